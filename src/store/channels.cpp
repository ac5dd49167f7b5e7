// Channel mutations and the channel_routes index that serves channels_for().
#include <algorithm>

#include "encode.hpp"
#include "ringrelay/store/ops.hpp"

namespace rr::store {
namespace {

constexpr std::string_view kChannelIdPrefix = "c_";
constexpr std::size_t kIdChars = 12;
constexpr int kIdAttempts = 8;

Status unknown_channel(std::string_view id) {
    return Status::error(Errc::not_found, cat("no channel with id ", id, ": see ringrelay channel list"));
}

// Every model a channel answers for: its list plus its model-map sources.
std::vector<std::string> served_models(const ChannelSpec& spec) {
    std::vector<std::string> out = spec.models;
    for (const auto& entry : spec.model_map) {
        if (std::find(out.begin(), out.end(), entry.first) == out.end()) out.push_back(entry.first);
    }
    return out;
}

// Route value: priority as 4 big-endian bytes with the sign bit flipped (so LMDB's
// bytewise order of duplicates is numeric order), then the channel id.
std::string route_value(std::int32_t priority, std::string_view id) {
    auto biased = static_cast<std::uint32_t>(priority) ^ 0x80000000u;
    std::string out;
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((biased >> shift) & 0xFF);
    out += id;
    return out;
}

std::string route_key(std::string_view group, std::string_view model) {
    std::string key(group);
    key += '\0';
    key += model;
    return key;
}

template <class Op>
Status for_each_route(const ChannelSpec& spec, std::string_view id, Op op) {
    std::string value = route_value(spec.priority, id);
    for (const std::string& group : spec.groups) {
        for (const std::string& model : served_models(spec)) {
            if (Status s = op(route_key(group, model), value); !s.ok()) return s;
        }
    }
    return {};
}

Status add_routes(WriteTxn& txn, const ChannelSpec& spec, std::string_view id) {
    return for_each_route(
        spec, id, [&](const std::string& k, const std::string& v) { return txn.put(Db::channel_routes, k, v); });
}

Status remove_routes(WriteTxn& txn, const ChannelSpec& spec, std::string_view id) {
    return for_each_route(
        spec, id, [&](const std::string& k, const std::string& v) { return txn.del(Db::channel_routes, k, v); });
}

struct LoadedChannel {
    ChannelSpec spec;
    std::int64_t created_at_ms = 0;
};

Status load_channel(WriteTxn& txn, std::string_view id, LoadedChannel& out) {
    auto value = txn.get(Db::channels, id);
    if (!value) return unknown_channel(id);
    ChannelView view = ChannelView::from(value->data(), value->size());
    if (!view.valid() || view.id() != id) {
        return Status::error(Errc::corrupt, cat("channel ", id, " has a damaged record: restore a backup"));
    }
    out.spec = spec_of(view);
    out.created_at_ms = view.created_at_ms();
    return {};
}

Status store_channel(WriteTxn& txn, std::string_view id, const ChannelSpec& spec, std::int64_t created_at_ms) {
    BaseUrl url;
    if (Status s = parse_base_url(spec.base_url, url); !s.ok()) return s;
    if (Status s = txn.put(Db::channels, id, encode_channel(id, spec, url, created_at_ms, txn.now_ms())); !s.ok())
        return s;
    return add_routes(txn, spec, id);
}

}  // namespace

Status add_channel(WriteTxn& txn, const ChannelSpec& spec, std::string& id_out) {
    if (Status s = validate_channel_spec(spec); !s.ok()) return s;
    std::string id;
    for (int attempt = 0; attempt < kIdAttempts && id.empty(); ++attempt) {
        if (Status s = generate_id(kChannelIdPrefix, kIdChars, id); !s.ok()) return s;
        if (txn.get(Db::channels, id)) id.clear();
    }
    if (id.empty())
        return Status::error(Errc::io, "cannot find a free channel id: the random number generator looks broken");
    if (Status s = store_channel(txn, id, spec, txn.now_ms()); !s.ok()) return s;
    id_out = std::move(id);
    return {};
}

Status add_channel(Env& env, const ChannelSpec& spec, std::int64_t now_ms, std::string& id_out) {
    if (Status s = validate_channel_spec(spec); !s.ok()) return s;
    std::string id;
    Status s = env.write([&](WriteTxn& txn) { return add_channel(txn, spec, id); }, now_ms);
    if (s.ok()) id_out = std::move(id);
    return s;
}

Status update_channel(Env& env, std::string_view id, const ChannelPatch& patch, std::int64_t now_ms) {
    return env.write(
        [&](WriteTxn& txn) {
            LoadedChannel old;
            if (Status s = load_channel(txn, id, old); !s.ok()) return s;
            ChannelSpec spec = old.spec;
            patch.apply_to(spec);
            if (Status s = validate_channel_spec(spec); !s.ok()) return s;
            if (Status s = remove_routes(txn, old.spec, id); !s.ok()) return s;
            return store_channel(txn, id, spec, old.created_at_ms);
        },
        now_ms);
}

Status set_channel_enabled(Env& env, std::string_view id, bool enabled, std::int64_t now_ms) {
    ChannelPatch patch;
    patch.enabled = enabled;
    return update_channel(env, id, patch, now_ms);
}

Status remove_channel(Env& env, std::string_view id, std::int64_t now_ms) {
    return env.write(
        [&](WriteTxn& txn) {
            LoadedChannel old;
            if (Status s = load_channel(txn, id, old); !s.ok()) return s;
            if (Status s = remove_routes(txn, old.spec, id); !s.ok()) return s;
            return txn.del(Db::channels, id);
        },
        now_ms);
}

}  // namespace rr::store

// Read snapshots and the per-request lookups.
#include "ringrelay/store/reader.hpp"

#include <lmdb.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace rr::store {
namespace {

MDB_val as_val(std::string_view s) noexcept {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view as_view(const MDB_val& v) noexcept {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

constexpr std::size_t kRoutePriorityBytes = 4;
constexpr std::size_t kMaxRouteKey = 64 + 1 + 128;

// "group\0model" into buf; 0 when it cannot be a route key.
std::size_t route_key(std::string_view group, std::string_view model, char (&buf)[kMaxRouteKey]) noexcept {
    if (group.empty() || group.size() > 64 || model.empty() || model.size() > 128) return 0;
    std::memcpy(buf, group.data(), group.size());
    buf[group.size()] = '\0';
    std::memcpy(buf + group.size() + 1, model.data(), model.size());
    return group.size() + 1 + model.size();
}

}  // namespace

std::string_view to_string(KeyStanding s) noexcept {
    switch (s) {
        case KeyStanding::ok: return "ok";
        case KeyStanding::unknown: return "unknown";
        case KeyStanding::revoked: return "revoked";
        case KeyStanding::expired: return "expired";
        case KeyStanding::rotated_past_grace: return "rotated_past_grace";
    }
    return "unknown";
}

KeyStanding classify(const KeyMatch& match, std::int64_t now_ms) noexcept {
    if (!match.key.valid()) return KeyStanding::unknown;
    if (match.key.revoked()) return KeyStanding::revoked;
    if (match.via_previous_secret && now_ms >= match.grace_until_ms) return KeyStanding::rotated_past_grace;
    if (match.key.expired_at(now_ms)) return KeyStanding::expired;
    return KeyStanding::ok;
}

Reader::Reader(Env& env) : env_(env) {
    env_.register_reader(&slot_);
}

Reader::~Reader() {
    reset();
    if (routes_cursor_ != nullptr) mdb_cursor_close(routes_cursor_);
    if (blocks_cursor_ != nullptr) mdb_cursor_close(blocks_cursor_);
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    env_.unregister_reader(&slot_);
}

bool Reader::enter() noexcept {
    for (;;) {
        slot_.active.store(true, std::memory_order_seq_cst);
        if (!env_.remapping_.load(std::memory_order_seq_cst)) return true;
        // A remap is waiting for us: step aside until it is done.
        slot_.active.store(false, std::memory_order_seq_cst);
        while (env_.remapping_.load(std::memory_order_acquire)) std::this_thread::yield();
    }
}

void Reader::leave() noexcept {
    slot_.active.store(false, std::memory_order_release);
}

Status Reader::renew() noexcept {
    reset();
    for (int attempt = 0; attempt < 8; ++attempt) {
        enter();
        int rc = txn_ != nullptr ? mdb_txn_renew(txn_) : mdb_txn_begin(env_.raw(), nullptr, MDB_RDONLY, &txn_);
        if (rc == 0) {
            active_ = true;
            routes_fresh_ = false;
            blocks_fresh_ = false;
            return {};
        }
        leave();
        if (rc != MDB_MAP_RESIZED) {
            return Status::error(Errc::io,
                                 cat("cannot start a read transaction in ", env_.dir(), ": ", mdb_strerror(rc)));
        }
        // Another process grew the file past our map: remap (parks our other Readers).
        if (Status s = env_.adopt_grown_map(); !s.ok()) return s;
    }
    return Status::error(Errc::io, cat("cannot start a read transaction in ", env_.dir(), ": the map keeps growing"));
}

void Reader::reset() noexcept {
    if (!active_) return;
    mdb_txn_reset(txn_);
    active_ = false;
    leave();
}

bool Reader::get(Db db, std::string_view key, std::string_view& value) const noexcept {
    MDB_val k = as_val(key);
    MDB_val v{};
    if (mdb_get(txn_, env_.dbi(db), &k, &v) != 0) return false;
    value = as_view(v);
    return true;
}

MDB_cursor* Reader::cursor(Db db) noexcept {
    MDB_cursor*& c = db == Db::channel_routes ? routes_cursor_ : blocks_cursor_;
    bool& fresh = db == Db::channel_routes ? routes_fresh_ : blocks_fresh_;
    if (fresh) return c;
    int rc = c == nullptr ? mdb_cursor_open(txn_, env_.dbi(db), &c) : mdb_cursor_renew(txn_, c);
    if (rc != 0) return nullptr;
    fresh = true;
    return c;
}

KeyMatch Reader::find_key(const Sha256& hash) const noexcept {
    std::string_view value;
    if (!get(Db::keys, {reinterpret_cast<const char*>(hash.data()), hash.size()}, value) || value.empty()) return {};
    if (static_cast<RecordKind>(value[0]) == RecordKind::key) return {KeyView::from(value.data(), value.size())};
    KeyAliasView alias = KeyAliasView::from(value.data(), value.size());
    if (!alias.valid()) return {};
    KeyView key = key_by_id(alias.id());
    if (!key.valid()) return {};
    return {key, true, alias.grace_until_ms()};
}

KeyView Reader::key_by_id(std::string_view id) const noexcept {
    std::string_view hash;
    std::string_view value;
    if (!get(Db::key_ids, id, hash) || !get(Db::keys, hash, value)) return {};
    KeyView key = KeyView::from(value.data(), value.size());
    return key.valid() && key.id() == id ? key : KeyView{};
}

ChannelView Reader::channel_by_id(std::string_view id) const noexcept {
    std::string_view value;
    if (!get(Db::channels, id, value)) return {};
    return ChannelView::from(value.data(), value.size());
}

std::size_t Reader::channels_for(std::string_view group, std::string_view model, std::span<ChannelView> out) noexcept {
    char buf[kMaxRouteKey];
    std::size_t key_size = route_key(group, model, buf);
    MDB_cursor* c = key_size != 0 ? cursor(Db::channel_routes) : nullptr;
    if (c == nullptr) return 0;
    MDB_val k{key_size, buf};
    MDB_val v{};
    std::size_t count = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size <= kRoutePriorityBytes) continue;
        ChannelView ch = channel_by_id(as_view(v).substr(kRoutePriorityBytes));
        if (!ch.valid()) continue;
        if (count < out.size()) out[count] = ch;
        ++count;
    }
    return count;
}

std::size_t Reader::channels_in_group(std::string_view group, std::span<ChannelView> out) noexcept {
    MDB_cursor* c = group.empty() || group.size() + 1 > kMaxRouteKey ? nullptr : cursor(Db::channel_routes);
    if (c == nullptr) return 0;
    char prefix[kMaxRouteKey];
    std::memcpy(prefix, group.data(), group.size());
    prefix[group.size()] = '\0';
    const std::string_view wanted(prefix, group.size() + 1);
    MDB_val k{wanted.size(), prefix};
    MDB_val v{};
    std::size_t count = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (!as_view(k).starts_with(wanted)) break;
        if (v.mv_size <= kRoutePriorityBytes) continue;
        const std::string_view id = as_view(v).substr(kRoutePriorityBytes);
        const std::size_t seen = std::min(count, out.size());
        bool dup = false;
        for (std::size_t i = 0; i < seen && !dup; ++i) dup = out[i].id() == id;
        if (dup || count >= out.size()) continue;  // past out's size duplicates cannot be told: not counted
        ChannelView ch = channel_by_id(id);
        if (!ch.valid()) continue;
        out[count++] = ch;
    }
    return count;
}

BlockView Reader::find_block(const IpAddress& addr, std::int64_t now_ms) noexcept {
    IpAddress a = unmap_ipv4(addr);
    MDB_cursor* c = (a.family == 4 || a.family == 6) ? cursor(Db::blocks) : nullptr;
    if (c == nullptr) return {};
    const unsigned width = a.family == 4 ? 32 : 128;
    BlockView best;
    std::uint8_t key[kMaxBlockKey];
    unsigned length = 0;
    while (length <= width) {
        // Jump to the shortest prefix length in use that is >= length.
        std::uint8_t probe[2] = {a.family, static_cast<std::uint8_t>(length)};
        MDB_val k{sizeof probe, probe};
        MDB_val v{};
        if (mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) != 0) break;
        const auto* found = static_cast<const std::uint8_t*>(k.mv_data);
        if (k.mv_size < 2 || found[0] != a.family) break;
        length = found[1];
        // The one key of that length that could contain the address.
        std::size_t key_size =
            block_key(IpPrefix{mask_ip(a, static_cast<std::uint8_t>(length)), static_cast<std::uint8_t>(length)}, key);
        MDB_val exact{key_size, key};
        if (mdb_cursor_get(c, &exact, &v, MDB_SET_KEY) == 0) {
            BlockView b = BlockView::from(exact.mv_data, exact.mv_size, v.mv_data, v.mv_size);
            if (b.valid() && !b.expired_at(now_ms)) best = b;  // longer lengths come later: most specific wins
        }
        ++length;
    }
    return best;
}

UsageView Reader::usage(std::string_view key_id) const noexcept {
    std::string_view value;
    if (!get(Db::usage, key_id, value)) return {};
    return UsageView::from(value.data(), value.size());
}

namespace {

// Walks a whole database with a cursor of its own (listings are not the hot path).
template <class Fn>
void walk(MDB_txn* txn, unsigned dbi, Fn&& fn) {
    MDB_cursor* c = nullptr;
    if (mdb_cursor_open(txn, dbi, &c) != 0) return;
    MDB_val k{};
    MDB_val v{};
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        fn(k, v);
    }
    mdb_cursor_close(c);
}

}  // namespace

void Reader::for_each_key(const std::function<void(const KeyView&)>& fn) {
    walk(txn_, env_.dbi(Db::keys), [&](const MDB_val&, const MDB_val& v) {
        KeyView key = KeyView::from(v.mv_data, v.mv_size);
        if (key.valid()) fn(key);
    });
}

void Reader::for_each_channel(const std::function<void(const ChannelView&)>& fn) {
    walk(txn_, env_.dbi(Db::channels), [&](const MDB_val&, const MDB_val& v) {
        ChannelView ch = ChannelView::from(v.mv_data, v.mv_size);
        if (ch.valid()) fn(ch);
    });
}

void Reader::for_each_block(const std::function<void(const BlockView&)>& fn) {
    walk(txn_, env_.dbi(Db::blocks), [&](const MDB_val& k, const MDB_val& v) {
        BlockView b = BlockView::from(k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (b.valid()) fn(b);
    });
}

void Reader::for_each_model_in_group(std::string_view group, const std::function<void(std::string_view)>& fn) {
    MDB_cursor* c = cursor(Db::channel_routes);
    if (c == nullptr || group.empty()) return;
    std::string prefix(group);
    prefix += '\0';
    MDB_val k = as_val(prefix);
    MDB_val v{};
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
        std::string_view key = as_view(k);
        if (!key.starts_with(prefix)) break;
        fn(key.substr(prefix.size()));
    }
}

ResponseRouteView Reader::response_route(std::string_view id) const noexcept {
    std::string_view value;
    if (id.empty() || !get(Db::responses, id, value)) return {};
    return ResponseRouteView::from(value.data(), value.size());
}

bool Reader::has_enabled_channel() {
    bool found = false;
    MDB_cursor* c = nullptr;
    if (mdb_cursor_open(txn_, env_.dbi(Db::channels), &c) != 0) return false;
    MDB_val k{};
    MDB_val v{};
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !found; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ChannelView ch = ChannelView::from(v.mv_data, v.mv_size);
        found = ch.valid() && ch.enabled();
    }
    mdb_cursor_close(c);
    return found;
}

std::uint32_t Reader::schema_version() const noexcept {
    std::string_view value;
    std::uint32_t version = 0;
    if (get(Db::meta, "schema_version", value) && value.size() == sizeof version) {
        std::memcpy(&version, value.data(), sizeof version);
    }
    return version;
}

}  // namespace rr::store

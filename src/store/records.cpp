// Record views (checked once, read in place) and record encoding.
#include <cstring>

#include "encode.hpp"
#include "ringrelay/store/records.hpp"

namespace rr::store {
namespace {

// The record at data[0..size) if it is a well-formed `kind` record of a layout this
// build reads; nullptr otherwise.
// min_fixed: the shortest fixed part accepted (a kind whose later fields were
// appended accepts records written before them).
template <class Fixed>
const Fixed* checked(const void* data, std::size_t size, RecordKind kind,
                     std::size_t min_fixed = sizeof(Fixed)) noexcept {
    if (data == nullptr || size < min_fixed) return nullptr;
    RecordHeader h;
    std::memcpy(&h, data, sizeof h);
    if (h.kind != static_cast<std::uint8_t>(kind) || h.version != kRecordVersion) return nullptr;
    if (h.fixed_size < min_fixed || h.fixed_size > size || h.total_size != size) return nullptr;
    return static_cast<const Fixed*>(data);
}

bool ref_inside(StrRef r, std::size_t fixed_size, std::size_t total) noexcept {
    return r.offset >= fixed_size && r.offset <= total && r.length <= total - r.offset;
}

template <class Fixed, class... Refs>
bool refs_inside(const Fixed* rec, Refs... refs) noexcept {
    std::size_t fixed = rec->header.fixed_size;
    std::size_t total = rec->header.total_size;
    return (ref_inside(refs, fixed, total) && ...);
}

std::string_view ref_string(const void* base, StrRef r) noexcept {
    return {static_cast<const char*>(base) + r.offset, r.length};
}

Sha256 copy_hash(const std::uint8_t (&bytes)[32]) noexcept {
    Sha256 h;
    std::memcpy(h.data(), bytes, h.size());
    return h;
}

}  // namespace

std::string_view to_string(ChannelType t) noexcept {
    switch (t) {
        case ChannelType::openai: return "openai";
        case ChannelType::anthropic: return "anthropic";
    }
    return "unknown";
}

std::optional<ChannelType> parse_channel_type(std::string_view text) noexcept {
    if (text == "openai") return ChannelType::openai;
    if (text == "anthropic") return ChannelType::anthropic;
    return std::nullopt;
}

void ListView::iterator::advance() noexcept {
    if (end_reached_) {
        done_ = true;
        current_ = {};
        return;
    }
    done_ = false;
    std::size_t comma = rest_.find(',');
    current_ = rest_.substr(0, comma);
    if (comma == std::string_view::npos) {
        end_reached_ = true;
        rest_ = {};
    } else {
        rest_.remove_prefix(comma + 1);
    }
}

std::size_t ListView::size() const noexcept {
    std::size_t n = 0;
    for (auto it = begin(); it != end(); ++it) ++n;
    return n;
}

bool ListView::contains(std::string_view item) const noexcept {
    for (std::string_view s : *this) {
        if (s == item) return true;
    }
    return false;
}

std::optional<std::string_view> ModelMapView::find(std::string_view requested) const noexcept {
    for (std::string_view entry : list_) {
        std::size_t eq = entry.find('=');
        if (eq != std::string_view::npos && entry.substr(0, eq) == requested) return entry.substr(eq + 1);
    }
    return std::nullopt;
}

std::string_view ModelMapView::map(std::string_view requested) const noexcept {
    auto mapped = find(requested);
    return mapped ? *mapped : requested;
}

KeyView KeyView::from(const void* data, std::size_t size) noexcept {
    KeyView v;
    const auto* rec = checked<KeyRecordV1>(data, size, RecordKind::key);
    if (rec && refs_inside(rec, rec->id, rec->name, rec->group, rec->models, rec->revoke_reason)) v.rec_ = rec;
    return v;
}

std::string_view KeyView::str(StrRef r) const noexcept {
    return ref_string(rec_, r);
}
Sha256 KeyView::hash() const noexcept {
    return copy_hash(rec_->hash);
}
Sha256 KeyView::previous_hash() const noexcept {
    return copy_hash(rec_->previous_hash);
}

KeyAliasView KeyAliasView::from(const void* data, std::size_t size) noexcept {
    KeyAliasView v;
    const auto* rec = checked<KeyAliasRecordV1>(data, size, RecordKind::key_alias);
    if (rec && refs_inside(rec, rec->id)) v.rec_ = rec;
    return v;
}

std::string_view KeyAliasView::id() const noexcept {
    return ref_string(rec_, rec_->id);
}

ChannelView ChannelView::from(const void* data, std::size_t size) noexcept {
    ChannelView v;
    const auto* rec = checked<ChannelRecordV1>(data, size, RecordKind::channel, ChannelView::kBaseFixedSize);
    if (rec && refs_inside(rec, rec->id, rec->name, rec->base_url, rec->host, rec->path_prefix, rec->api_key,
                           rec->groups, rec->models, rec->model_map)) {
        v.rec_ = rec;
        if (v.has_health_fields() && !refs_inside(rec, rec->health_path)) v.rec_ = nullptr;
    }
    return v;
}

std::string_view ChannelView::str(StrRef r) const noexcept {
    return ref_string(rec_, r);
}

BlockView BlockView::from(const void* key, std::size_t key_size, const void* data, std::size_t size) noexcept {
    BlockView v;
    const auto* k = static_cast<const std::uint8_t*>(key);
    if (k == nullptr || key_size < 2) return v;
    std::uint8_t family = k[0];
    std::size_t addr_size = family == 4 ? 4 : 16;
    if ((family != 4 && family != 6) || key_size != 2 + addr_size || k[1] > addr_size * 8) return v;
    const auto* rec = checked<BlockRecordV1>(data, size, RecordKind::block);
    if (rec == nullptr || !refs_inside(rec, rec->reason)) return v;
    v.rec_ = rec;
    v.prefix_.network.family = family;
    std::memcpy(v.prefix_.network.bytes.data(), k + 2, addr_size);
    v.prefix_.length = k[1];
    return v;
}

std::string_view BlockView::reason() const noexcept {
    return ref_string(rec_, rec_->reason);
}

UsageView UsageView::from(const void* data, std::size_t size) noexcept {
    UsageView v;
    v.rec_ = checked<UsageRecordV1>(data, size, RecordKind::usage);
    return v;
}

ResponseRouteView ResponseRouteView::from(const void* data, std::size_t size) noexcept {
    ResponseRouteView v;
    const auto* rec = checked<ResponseRouteRecordV1>(data, size, RecordKind::response_route);
    if (rec != nullptr && refs_inside(rec, rec->channel_id, rec->key_id)) v.rec_ = rec;
    return v;
}

std::string_view ResponseRouteView::channel_id() const noexcept {
    return ref_string(rec_, rec_->channel_id);
}

std::string_view ResponseRouteView::key_id() const noexcept {
    return ref_string(rec_, rec_->key_id);
}

std::size_t block_key(const IpPrefix& p, std::uint8_t (&out)[kMaxBlockKey]) noexcept {
    std::size_t addr_size = p.network.size();
    out[0] = p.network.family;
    out[1] = p.length;
    std::memcpy(out + 2, p.network.bytes.data(), addr_size);
    return 2 + addr_size;
}

// --- encoding ---

std::string join_list(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& s : items) {
        if (!out.empty()) out += ',';
        out += s;
    }
    return out;
}

std::string join_model_map(const std::vector<std::pair<std::string, std::string>>& map) {
    std::string out;
    for (const auto& [from, to] : map) {
        if (!out.empty()) out += ',';
        out += from;
        out += '=';
        out += to;
    }
    return out;
}

std::string encode_key(const KeyState& k) {
    RecordBuilder<KeyRecordV1> b(RecordKind::key);
    KeyRecordV1& f = b.fixed();
    std::memcpy(f.hash, k.hash.data(), 32);
    std::memcpy(f.previous_hash, k.previous_hash.data(), 32);
    f.created_at_ms = k.created_at_ms;
    f.updated_at_ms = k.updated_at_ms;
    f.expires_at_ms = k.spec.expires_at_ms;
    f.revoked_at_ms = k.revoked ? k.revoked_at_ms : 0;
    f.previous_grace_until_ms = k.previous_grace_until_ms;
    f.max_concurrency = k.spec.max_concurrency;
    f.max_wait = k.spec.max_wait;
    f.rpm = k.spec.rpm;
    f.tpm = k.spec.tpm;
    f.quota = k.spec.quota;
    f.revoked = k.revoked ? 1 : 0;
    f.has_previous = k.has_previous ? 1 : 0;
    f.id = b.add(k.id);
    f.name = b.add(k.spec.name);
    f.group = b.add(k.spec.group);
    f.models = b.add(join_list(k.spec.models));
    f.revoke_reason = b.add(k.revoked ? k.revoke_reason : std::string());
    return b.finish();
}

KeySpec spec_of(const KeyView& v) {
    KeySpec s;
    s.name = std::string(v.name());
    s.group = std::string(v.group());
    for (std::string_view m : v.models()) s.models.emplace_back(m);
    s.max_concurrency = v.max_concurrency();
    s.max_wait = v.max_wait();
    s.rpm = v.rpm();
    s.tpm = v.tpm();
    s.quota = v.quota();
    s.expires_at_ms = v.expires_at_ms();
    return s;
}

KeyState state_of(const KeyView& v) {
    KeyState k;
    k.id = std::string(v.id());
    k.spec = spec_of(v);
    k.hash = v.hash();
    k.created_at_ms = v.created_at_ms();
    k.updated_at_ms = v.updated_at_ms();
    k.revoked = v.revoked();
    k.revoked_at_ms = v.revoked_at_ms();
    k.revoke_reason = std::string(v.revoke_reason());
    k.has_previous = v.has_previous();
    k.previous_hash = v.previous_hash();
    k.previous_grace_until_ms = v.previous_grace_until_ms();
    return k;
}

std::string encode_key_alias(std::string_view id, std::int64_t rotated_at_ms, std::int64_t grace_until_ms) {
    RecordBuilder<KeyAliasRecordV1> b(RecordKind::key_alias);
    b.fixed().rotated_at_ms = rotated_at_ms;
    b.fixed().grace_until_ms = grace_until_ms;
    b.fixed().id = b.add(id);
    return b.finish();
}

std::string encode_channel(std::string_view id, const ChannelSpec& spec, const BaseUrl& url, std::int64_t created_at_ms,
                           std::int64_t updated_at_ms) {
    RecordBuilder<ChannelRecordV1> b(RecordKind::channel);
    ChannelRecordV1& f = b.fixed();
    f.created_at_ms = created_at_ms;
    f.updated_at_ms = updated_at_ms;
    f.priority = spec.priority;
    f.weight = spec.weight;
    f.max_concurrency = spec.max_concurrency;
    f.timeout_ms = spec.timeout_ms;
    f.port = url.port;
    f.type = static_cast<std::uint8_t>(spec.type);
    f.enabled = spec.enabled ? 1 : 0;
    f.tls = url.tls ? 1 : 0;
    f.pass_headers = spec.pass_headers;
    f.inject_usage = spec.inject_usage ? 1 : 0;
    f.id = b.add(id);
    f.name = b.add(spec.name);
    StrRef base = b.add(url.normalized);
    f.base_url = base;
    f.host =
        StrRef{base.offset + static_cast<std::uint32_t>(url.host_offset), static_cast<std::uint32_t>(url.host.size())};
    f.path_prefix = StrRef{base.offset + static_cast<std::uint32_t>(url.path_offset),
                           static_cast<std::uint32_t>(url.path_prefix.size())};
    f.api_key = b.add(spec.api_key);
    f.groups = b.add(join_list(spec.groups));
    f.models = b.add(join_list(spec.models));
    f.model_map = b.add(join_model_map(spec.model_map));
    f.health_path = b.add(spec.health_path);
    f.health_interval_ms = spec.health_interval_ms;
    f.health_timeout_ms = spec.health_timeout_ms;
    f.first_byte_timeout_ms = spec.first_byte_timeout_ms;
    return b.finish();
}

ChannelSpec spec_of(const ChannelView& v) {
    ChannelSpec s;
    s.name = std::string(v.name());
    s.type = v.type();
    s.base_url = std::string(v.base_url());
    s.api_key = std::string(v.api_key());
    s.groups.clear();
    for (std::string_view g : v.groups()) s.groups.emplace_back(g);
    for (std::string_view m : v.models()) s.models.emplace_back(m);
    for (std::string_view entry : v.model_map().entries()) {
        std::size_t eq = entry.find('=');
        s.model_map.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    s.weight = v.weight();
    s.priority = v.priority();
    s.enabled = v.enabled();
    s.max_concurrency = v.max_concurrency();
    s.timeout_ms = v.timeout_ms();
    s.pass_headers = v.pass_headers();
    s.inject_usage = v.inject_usage();
    s.health_path = std::string(v.health_path());
    if (v.health_interval_ms() != 0) s.health_interval_ms = v.health_interval_ms();
    if (v.health_timeout_ms() != 0) s.health_timeout_ms = v.health_timeout_ms();
    s.first_byte_timeout_ms = v.first_byte_timeout_ms();
    return s;
}

std::string encode_block(std::string_view reason, std::int64_t created_at_ms, std::int64_t expires_at_ms) {
    RecordBuilder<BlockRecordV1> b(RecordKind::block);
    b.fixed().created_at_ms = created_at_ms;
    b.fixed().expires_at_ms = expires_at_ms;
    b.fixed().reason = b.add(reason);
    return b.finish();
}

std::string encode_usage(std::uint64_t requests, std::uint64_t tokens, std::int64_t updated_at_ms) {
    RecordBuilder<UsageRecordV1> b(RecordKind::usage);
    b.fixed().requests = requests;
    b.fixed().tokens = tokens;
    b.fixed().updated_at_ms = updated_at_ms;
    return b.finish();
}

std::string encode_response_route(std::string_view channel_id, std::string_view key_id, std::int64_t expires_at_ms) {
    RecordBuilder<ResponseRouteRecordV1> b(RecordKind::response_route);
    b.fixed().expires_at_ms = expires_at_ms;
    b.fixed().channel_id = b.add(channel_id);
    b.fixed().key_id = b.add(key_id);
    return b.finish();
}

}  // namespace rr::store

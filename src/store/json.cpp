// Records as JSON (CLI --json and the admin API) and the listing order.
#include "ringrelay/store/json.hpp"
#include "ringrelay/store/ops.hpp"

#include <algorithm>
#include <cstdio>

namespace rr::store {

void JsonWriter::separate() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!has_items_.empty()) {
        if (has_items_.back()) out_ += ',';
        has_items_.back() = true;
    }
}

JsonWriter& JsonWriter::begin_object() {
    separate();
    out_ += '{';
    has_items_.push_back(false);
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    out_ += '}';
    has_items_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::begin_array() {
    separate();
    out_ += '[';
    has_items_.push_back(false);
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    out_ += ']';
    has_items_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
    str(k);
    out_ += ':';
    after_key_ = true;
    return *this;
}

JsonWriter& JsonWriter::str(std::string_view v) {
    separate();
    out_ += '"';
    for (char c : v) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out_ += "\\\""; break;
            case '\\': out_ += "\\\\"; break;
            case '\n': out_ += "\\n"; break;
            case '\r': out_ += "\\r"; break;
            case '\t': out_ += "\\t"; break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out_ += buf;
                } else {
                    out_ += c;
                }
        }
    }
    out_ += '"';
    return *this;
}

JsonWriter& JsonWriter::num(std::uint64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
}

JsonWriter& JsonWriter::num_signed(std::int64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
}

JsonWriter& JsonWriter::boolean(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
}

JsonWriter& JsonWriter::null() {
    separate();
    out_ += "null";
    return *this;
}

JsonWriter& JsonWriter::time(std::int64_t unix_ms) {
    return unix_ms == 0 ? null() : str(format_rfc3339(unix_ms));
}

JsonWriter& JsonWriter::list(const ListView& items) {
    begin_array();
    for (std::string_view item : items) str(item);
    return end_array();
}

std::string_view key_status(const KeyView& k, std::int64_t now_ms) noexcept {
    if (k.revoked()) return "revoked";
    if (k.expired_at(now_ms)) return "expired";
    return "active";
}

void key_json(JsonWriter& j, const KeyView& k, const UsageView& u, std::int64_t now_ms) {
    j.begin_object();
    j.key("id").str(k.id());
    j.key("name").str(k.name());
    j.key("group").str(k.group());
    j.key("models").list(k.models());
    j.key("max_concurrency").num(k.max_concurrency());
    j.key("max_wait").num(k.max_wait());
    j.key("rpm").num(k.rpm());
    j.key("tpm").num(k.tpm());
    j.key("quota").num(k.quota());
    j.key("status").str(key_status(k, now_ms));
    j.key("created_at").time(k.created_at_ms());
    j.key("updated_at").time(k.updated_at_ms());
    j.key("expires_at").time(k.expires_at_ms());
    j.key("revoked").boolean(k.revoked());
    j.key("revoked_at").time(k.revoked_at_ms());
    j.key("revoke_reason");
    if (k.revoked())
        j.str(k.revoke_reason());
    else
        j.null();
    j.key("previous_secret_valid_until").time(k.has_previous() ? k.previous_grace_until_ms() : 0);
    j.key("usage").begin_object();
    j.key("requests").num(u.requests());
    j.key("tokens").num(u.tokens());
    j.end_object();
    j.end_object();
}

void new_key_json(JsonWriter& j, std::string_view id, std::string_view name, std::string_view secret) {
    j.begin_object().key("id").str(id).key("name").str(name).key("secret").str(secret).end_object();
}

void rotated_key_json(JsonWriter& j, std::string_view id, std::string_view secret, std::int64_t valid_until_ms) {
    j.begin_object().key("id").str(id).key("secret").str(secret);
    j.key("previous_secret_valid_until").time(valid_until_ms).end_object();
}

void channel_json(JsonWriter& j, const ChannelView& c, bool reveal, std::optional<ServerTimeouts> server) {
    j.begin_object();
    j.key("id").str(c.id());
    j.key("name").str(c.name());
    j.key("type").str(to_string(c.type()));
    j.key("base_url").str(c.base_url());
    j.key("groups").list(c.groups());
    j.key("models").list(c.models());
    j.key("model_map").begin_object();
    for (std::string_view entry : c.model_map().entries()) {
        std::size_t eq = entry.find('=');
        j.key(entry.substr(0, eq)).str(entry.substr(eq + 1));
    }
    j.end_object();
    j.key("weight").num(c.weight());
    j.key("priority").num_signed(c.priority());
    j.key("enabled").boolean(c.enabled());
    j.key("max_concurrency").num(c.max_concurrency());
    const bool inherited = c.timeout_ms() == kInheritTimeout;
    j.key("timeout_ms");
    inherited ? j.null() : j.num(c.timeout_ms());
    if (server) j.key("effective_timeout_ms").num(inherited ? server->upstream_timeout_ms : c.timeout_ms());
    const std::uint32_t first_byte = c.first_byte_timeout_ms();
    const bool first_byte_off = first_byte == kFirstByteTimeoutOff;
    j.key("first_byte_timeout_ms");
    if (first_byte == kInheritTimeout) j.null();
    else j.num(first_byte_off ? 0 : first_byte);
    if (server)
        j.key("effective_first_byte_timeout_ms")
            .num(first_byte == kInheritTimeout ? server->first_byte_timeout_ms : first_byte_off ? 0 : first_byte);
    j.key("pass_headers").list(ListView(pass_headers_text(c.pass_headers())));
    j.key("inject_usage").boolean(c.inject_usage());
    j.key("health_path");
    if (c.health_path().empty()) j.null();
    else j.str(c.health_path());
    j.key("health_interval_ms").num(c.health_interval_ms() ? c.health_interval_ms() : kDefaultHealthIntervalMs);
    j.key("health_timeout_ms").num(c.health_timeout_ms() ? c.health_timeout_ms() : kDefaultHealthTimeoutMs);
    j.key("created_at").time(c.created_at_ms());
    j.key("updated_at").time(c.updated_at_ms());
    if (reveal) j.key("api_key").str(c.api_key());
    j.end_object();
}

void block_json(JsonWriter& j, const BlockView& b, std::int64_t now_ms) {
    j.begin_object();
    j.key("prefix").str(format_ip_prefix(b.prefix()));
    j.key("reason").str(b.reason());
    j.key("created_at").time(b.created_at_ms());
    j.key("expires_at").time(b.expires_at_ms());
    j.key("active").boolean(!b.expired_at(now_ms));
    j.end_object();
}

void new_block_json(JsonWriter& j, const IpPrefix& prefix, std::string_view reason, std::int64_t expires_at_ms) {
    j.begin_object().key("prefix").str(format_ip_prefix(prefix)).key("reason").str(reason);
    j.key("expires_at").time(expires_at_ms).end_object();
}

void removed_json(JsonWriter& j, std::string_view field, std::string_view value) {
    j.begin_object().key(field).str(value).key("removed").boolean(true).end_object();
}

std::vector<KeyView> keys_in_list_order(Reader& reader) {
    std::vector<KeyView> keys;
    reader.for_each_key([&](const KeyView& k) { keys.push_back(k); });
    std::sort(keys.begin(), keys.end(), [](const KeyView& a, const KeyView& b) {
        return a.created_at_ms() != b.created_at_ms() ? a.created_at_ms() < b.created_at_ms() : a.id() < b.id();
    });
    return keys;
}

std::vector<ChannelView> channels_in_list_order(Reader& reader) {
    std::vector<ChannelView> channels;
    reader.for_each_channel([&](const ChannelView& c) { channels.push_back(c); });
    std::sort(channels.begin(), channels.end(), [](const ChannelView& a, const ChannelView& b) {
        if (a.priority() != b.priority()) return a.priority() < b.priority();
        return a.created_at_ms() != b.created_at_ms() ? a.created_at_ms() < b.created_at_ms() : a.id() < b.id();
    });
    return channels;
}

}  // namespace rr::store

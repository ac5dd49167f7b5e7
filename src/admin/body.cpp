// Request bodies of the admin API: JSON objects read field by field into the
// store's KeySpec / ChannelSpec patches, checked with the store's validation (the
// CLI's flags go through the same functions), every error naming its field.
#include <simdjson.h>

#include <algorithm>
#include <limits>
#include <span>

#include "api.hpp"

namespace rr::admin {
namespace {

using simdjson::dom::element;
using store::Status;

constexpr std::int64_t kDefaultBlockTtlMs = 24LL * 3600 * 1000;
constexpr std::int64_t kDefaultGraceMs = 24LL * 3600 * 1000;
constexpr std::int64_t kMaxGraceMs = 365LL * 24 * 3600 * 1000;

std::string in_quotes(std::string_view s) {
    return cat("\"", s, "\"");
}

// A request body's JSON object (simdjson DOM: the whole text is validated), read
// field by field. Every reader leaves its output untouched when the field is
// absent and records the first error, after which every reader answers false.
class Fields {
public:
    // An empty body reads as {}. `known`: the fields the endpoint takes; any other
    // field, or one given twice, is an error.
    Fields(std::string_view body, std::span<const std::string_view> known) {
        if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return;
        element doc;
        if (parser_.parse(body.data(), body.size()).get(doc)) {
            error_ = "request body is not valid JSON";
            return;
        }
        if (doc.get_object().get(obj_)) {
            error_ = "request body must be a JSON object";
            return;
        }
        has_object_ = true;
        std::vector<std::string_view> seen;
        for (auto field : obj_) {
            if (std::find(known.begin(), known.end(), field.key) == known.end()) {
                std::string names;
                for (std::string_view k : known) names += cat(names.empty() ? "" : ", ", k);
                error_ = cat("unknown field ", in_quotes(field.key), ": this endpoint takes ", names);
                return;
            }
            if (std::find(seen.begin(), seen.end(), field.key) != seen.end()) {
                error_ = cat(field.key, ": given twice: give it once");
                return;
            }
            seen.push_back(field.key);
        }
        count_ = seen.size();
    }
    Fields(const Fields&) = delete;
    Fields& operator=(const Fields&) = delete;

    bool ok() const noexcept { return error_.empty(); }
    const std::string& error() const noexcept { return error_; }
    std::size_t count() const noexcept { return count_; }

    // Fails unless `name` is present (and no error came before).
    bool require(std::string_view name) {
        if (!ok()) return false;
        element e;
        if (!find(name, e)) return fail(name, "required");
        return true;
    }

    // A string, checked by validate(text) -> store::Status.
    template <class Validate>
    bool text(std::string_view name, std::optional<std::string>& out, Validate validate) {
        std::string_view v;
        element e;
        if (!find(name, e)) return ok();
        if (e.get_string().get(v)) return fail(name, "must be a string");
        if (!check(name, validate(v))) return false;
        out = std::string(v);
        return true;
    }

    // A whole number in [min, max].
    template <class T>
    bool number(std::string_view name, std::optional<T>& out, std::int64_t min = 0,
                std::uint64_t max = std::numeric_limits<T>::max()) {
        element e;
        if (!find(name, e)) return ok();
        std::int64_t i = 0;
        std::uint64_t u = 0;
        if (!e.get_int64().get(i)) {
            if (i < min || (i >= 0 && static_cast<std::uint64_t>(i) > max)) return out_of_range(name, min, max);
            out = static_cast<T>(i);
            return true;
        }
        if (!e.get_uint64().get(u)) {
            if (u > max) return out_of_range(name, min, max);
            out = static_cast<T>(u);
            return true;
        }
        return fail(name, "must be a whole number");
    }

    bool boolean(std::string_view name, std::optional<bool>& out) {
        element e;
        bool b = false;
        if (!find(name, e)) return ok();
        if (e.get_bool().get(b)) return fail(name, "must be true or false");
        out = b;
        return true;
    }

    // A list as the CLI takes it ("a,b"), or a JSON array of strings, through
    // parse(csv, vector) -> store::Status; `non_empty` refuses an empty list.
    template <class Parse>
    bool list(std::string_view name, std::optional<std::vector<std::string>>& out, Parse parse, bool non_empty) {
        element e;
        std::string csv;
        if (!find(name, e)) return ok();
        if (!list_text(name, e, csv)) return false;
        std::vector<std::string> items;
        if (!check(name, parse(csv, items))) return false;
        if (non_empty && items.empty()) return fail(name, "must name at least one");
        out = std::move(items);
        return true;
    }

    // A model map: {"from":"to",...} or "from=to,...".
    bool model_map(std::string_view name, std::optional<std::vector<std::pair<std::string, std::string>>>& out) {
        element e;
        std::string text;
        if (!find(name, e)) return ok();
        if (simdjson::dom::object map; !e.get_object().get(map)) {
            for (auto entry : map) {
                std::string_view to;
                if (entry.value.get_string().get(to)) return fail(name, "values must be strings (model names)");
                text += cat(text.empty() ? "" : ",", entry.key, "=", to);
            }
        } else if (std::string_view s; !e.get_string().get(s)) {
            text = s;
        } else {
            return fail(name, "must be an object {\"from\":\"to\"} or a string \"from=to,...\"");
        }
        std::vector<std::pair<std::string, std::string>> map;
        if (!check(name, store::parse_model_map(text, map))) return false;
        out = std::move(map);
        return true;
    }

    // A duration: a string ("30s", "24h") or a number of seconds. With `never`,
    // the string "never" is taken too and sets *never.
    bool duration(std::string_view name, std::optional<std::int64_t>& out, bool* never = nullptr) {
        element e;
        std::string_view s;
        std::uint64_t seconds = 0;
        if (!find(name, e)) return ok();
        if (!e.get_string().get(s) && never != nullptr && s == "never") {
            *never = true;
            return true;
        }
        if (!e.get_string().get(s)) {
            auto d = parse_duration(s);
            if (!d) return fail(name, cat(in_quotes(s), " is not a duration: use e.g. 500ms, 30s, 5m, 24h or 30d"));
            out = d->count();
            return true;
        }
        if (!e.get_uint64().get(seconds) && seconds <= std::uint64_t(std::numeric_limits<std::int64_t>::max() / 1000)) {
            out = static_cast<std::int64_t>(seconds) * 1000;
            return true;
        }
        return fail(name, "must be a duration string (\"30s\") or a whole number of seconds");
    }

    // A duration, or null / "inherit" (sets `inherit`: the server's setting applies).
    bool duration_or_inherit(std::string_view name, std::optional<std::int64_t>& out, bool& inherit) {
        element e;
        std::string_view s;
        if (!find(name, e)) return ok();
        if (e.is_null() || (!e.get_string().get(s) && s == "inherit")) {
            inherit = true;
            return true;
        }
        return duration(name, out);
    }

    // duration_or_inherit, or "off" (sets `off`).
    bool duration_inherit_or_off(std::string_view name, std::optional<std::int64_t>& out, bool& inherit, bool& off) {
        element e;
        std::string_view s;
        if (find(name, e) && !e.get_string().get(s) && s == "off") {
            off = true;
            return true;
        }
        return duration_or_inherit(name, out, inherit);
    }

    // An expiry: a lifetime from now ("30d"), an RFC 3339 time, or "never"/null (0).
    bool expiry(std::string_view name, std::int64_t now_ms, std::optional<std::int64_t>& out) {
        element e;
        std::string_view s;
        if (!find(name, e)) return ok();
        if (e.is_null() || (!e.get_string().get(s) && s == "never")) {
            out = 0;
            return true;
        }
        if (e.get_string().get(s)) return fail(name, "must be a string: a lifetime (30d), an RFC 3339 time or never");
        std::int64_t at = 0;
        if (auto d = parse_duration(s)) {
            if (d->count() == 0 || d->count() > std::numeric_limits<std::int64_t>::max() - now_ms)
                return fail(name, cat(in_quotes(s), " is not a usable lifetime: give a positive duration like 30d"));
            at = now_ms + d->count();
        } else if (auto t = parse_rfc3339(s)) {
            at = *t;
        } else {
            return fail(name,
                        cat(in_quotes(s), " is neither a duration (30s, 24h, 30d) nor an RFC 3339 time, nor never"));
        }
        if (at <= now_ms) return fail(name, cat(in_quotes(s), " is in the past: give a future time"));
        out = at;
        return true;
    }

    bool fail(std::string_view name, std::string_view why) {
        if (ok()) error_ = cat(name, ": ", why);
        return false;
    }

private:
    bool find(std::string_view name, element& out) const {
        return has_object_ && ok() && !obj_.at_key(name).get(out);
    }
    bool check(std::string_view name, const Status& s) {
        return s.ok() || fail(name, s.message);
    }
    bool out_of_range(std::string_view name, std::int64_t min, std::uint64_t max) {
        return fail(name, cat("must be a whole number from ", std::to_string(min), " to ", std::to_string(max)));
    }
    bool list_text(std::string_view name, const element& e, std::string& csv) {
        std::string_view s;
        if (!e.get_string().get(s)) {
            csv = s;
            return true;
        }
        simdjson::dom::array items;
        if (e.get_array().get(items)) return fail(name, "must be an array of strings or a string \"a,b\"");
        for (element item : items) {
            if (item.get_string().get(s)) return fail(name, "must be an array of strings");
            if (s.empty() || s.find(',') != std::string_view::npos)
                return fail(name, cat(in_quotes(s), " is not a name"));
            csv += cat(csv.empty() ? "" : ",", s);
        }
        return true;
    }

    simdjson::dom::parser parser_;
    simdjson::dom::object obj_;
    bool has_object_ = false;
    std::size_t count_ = 0;
    std::string error_;
};

bool done(const Fields& f, std::string& error) {
    if (f.ok()) return true;
    error = f.error();
    return false;
}

constexpr std::string_view kKeyFields[] = {"name", "group",   "models", "max_concurrency", "max_wait",
                                           "rpm",  "tpm",     "quota",  "expires"};
constexpr std::string_view kChannelFields[] = {"name",      "base_url", "api_key",  "models",
                                               "type",      "groups",   "model_map", "weight",
                                               "priority",  "max_concurrency", "timeout", "enabled",
                                               "pass_headers", "health_path", "health_interval", "health_timeout",
                                               "first_byte_timeout", "inject_usage"};
constexpr std::string_view kRevokeFields[] = {"reason"};
constexpr std::string_view kRotateFields[] = {"grace"};
constexpr std::string_view kCircuitFields[] = {"state", "for"};
constexpr std::string_view kBlockFields[] = {"address", "ttl", "reason"};
constexpr std::string_view kAddressFields[] = {"address"};
constexpr std::string_view kBackupFields[] = {"path"};

Status accept_any(std::string_view) {
    return {};
}

bool read_key_fields(Fields& f, std::int64_t now_ms, store::KeyPatch& p) {
    auto name = [](std::string_view v) { return store::validate_name("key name", v); };
    return f.text("name", p.name, name) && f.text("group", p.group, store::validate_group) &&
           f.list("models", p.models, store::parse_model_list, false) &&
           f.number("max_concurrency", p.max_concurrency, 1) && f.number("max_wait", p.max_wait) &&
           f.number("rpm", p.rpm) && f.number("tpm", p.tpm) && f.number("quota", p.quota) &&
           f.expiry("expires", now_ms, p.expires_at_ms);
}

// The active health check: "health_path" ("" = off), "health_interval", "health_timeout".
bool read_health_fields(Fields& f, store::ChannelPatch& p) {
    std::optional<std::int64_t> interval;
    std::optional<std::int64_t> timeout;
    if (!(f.text("health_path", p.health_path, store::validate_health_path) &&
          f.duration("health_interval", interval) && f.duration("health_timeout", timeout)))
        return false;
    if (interval) {
        if (*interval < store::kMinHealthIntervalMs || *interval > store::kMaxTimeoutMs)
            return f.fail("health_interval", "must be between 1s and 24h");
        p.health_interval_ms = static_cast<std::uint32_t>(*interval);
    }
    if (timeout) {
        if (*timeout <= 0 || *timeout > store::kMaxTimeoutMs)
            return f.fail("health_timeout", "must be between 1ms and 24h");
        p.health_timeout_ms = static_cast<std::uint32_t>(*timeout);
    }
    return true;
}

// "first_byte_timeout": a duration, "off" or 0 (off for this channel), null or
// "inherit" (the server's --first-byte-timeout).
bool read_first_byte_field(Fields& f, store::ChannelPatch& p) {
    std::optional<std::int64_t> ms;
    bool inherit = false;
    bool off = false;
    if (!f.duration_inherit_or_off("first_byte_timeout", ms, inherit, off)) return false;
    if (inherit) p.first_byte_timeout_ms = store::kInheritTimeout;
    if (off || (ms && *ms == 0)) p.first_byte_timeout_ms = store::kFirstByteTimeoutOff;
    if (ms && *ms != 0) {
        if (*ms < 0 || *ms > store::kMaxTimeoutMs)
            return f.fail("first_byte_timeout", "must be between 1ms and 24h, off, or inherit (null)");
        p.first_byte_timeout_ms = static_cast<std::uint32_t>(*ms);
    }
    return true;
}

bool read_channel_fields(Fields& f, store::ChannelPatch& p) {
    auto name = [](std::string_view v) { return store::validate_name("channel name", v); };
    std::optional<std::string> base_url;
    std::optional<std::string> type;
    std::optional<std::int64_t> timeout;
    std::optional<std::vector<std::string>> pass;
    std::uint8_t pass_bits = 0;
    auto pass_list = [&pass_bits](std::string_view csv, std::vector<std::string>&) {
        return store::parse_pass_headers(csv, pass_bits);
    };
    bool inherit_timeout = false;
    std::string normalized;
    auto url = [&](std::string_view v) {
        store::BaseUrl parsed;
        store::Status s = store::parse_base_url(v, parsed);
        normalized = parsed.normalized;
        return s;
    };
    auto channel_type = [](std::string_view v) {
        return store::parse_channel_type(v) ? Status::success()
                                            : Status::error(store::Errc::invalid, "use openai or anthropic");
    };
    if (!(f.text("name", p.name, name) && f.text("base_url", base_url, url) &&
          f.text("api_key", p.api_key, store::validate_credential) &&
          f.list("models", p.models, store::parse_model_list, true) && f.text("type", type, channel_type) &&
          f.list("groups", p.groups, store::parse_group_list, true) && f.model_map("model_map", p.model_map) &&
          f.number("weight", p.weight, 1) &&
          f.number("priority", p.priority, std::numeric_limits<std::int32_t>::min()) &&
          f.number("max_concurrency", p.max_concurrency) && f.duration_or_inherit("timeout", timeout, inherit_timeout) &&
          f.boolean("enabled", p.enabled) && f.boolean("inject_usage", p.inject_usage) &&
          f.list("pass_headers", pass, pass_list, false)))
        return false;
    if (pass) p.pass_headers = pass_bits;
    if (base_url) p.base_url = normalized;
    if (type) p.type = store::parse_channel_type(*type);
    if (inherit_timeout) p.timeout_ms = store::kInheritTimeout;
    if (timeout) {
        if (*timeout <= 0 || *timeout > store::kMaxTimeoutMs)
            return f.fail("timeout", "must be between 1ms and 24h, or inherit (null)");
        p.timeout_ms = static_cast<std::uint32_t>(*timeout);
    }
    return read_first_byte_field(f, p) && read_health_fields(f, p);
}

}  // namespace

bool parse_key_create(std::string_view body, std::int64_t now_ms, store::KeySpec& out, std::string& error) {
    Fields f(body, kKeyFields);
    store::KeyPatch patch;
    if (f.require("name") && read_key_fields(f, now_ms, patch)) {
        patch.apply_to(out);
        if (store::Status s = store::validate_key_spec(out); !s.ok()) f.fail("key", s.message);
    }
    return done(f, error);
}

bool parse_key_patch(std::string_view body, std::int64_t now_ms, store::KeyPatch& out, std::string& error) {
    Fields f(body, kKeyFields);
    if (f.ok() && f.count() == 0) f.fail("body", "give at least one field to change");
    read_key_fields(f, now_ms, out);
    return done(f, error);
}

bool parse_revoke(std::string_view body, std::string& reason, std::string& error) {
    Fields f(body, kRevokeFields);
    std::optional<std::string> r;
    f.text("reason", r, [](std::string_view v) { return store::validate_text("revoke reason", v); });
    if (r) reason = std::move(*r);
    return done(f, error);
}

bool parse_rotate(std::string_view query, std::string_view body, std::int64_t& grace_ms, std::string& error) {
    Fields f(body, kRotateFields);
    std::optional<std::int64_t> grace;
    f.duration("grace", grace);
    bool malformed = false;
    if (auto q = query_param(query, "grace", malformed); q && f.ok()) {
        if (grace) f.fail("grace", "give it in the query or in the body, not both");
        else if (auto d = parse_duration(*q)) grace = d->count();
        else f.fail("grace", cat(in_quotes(*q), " is not a duration: use e.g. 30m, 24h or 7d"));
    }
    if (malformed) f.fail("query", "malformed percent-escape");
    if (f.ok()) {
        grace_ms = grace.value_or(kDefaultGraceMs);
        if (grace_ms > kMaxGraceMs) f.fail("grace", "must be at most 365d");
    }
    return done(f, error);
}

bool parse_channel_create(std::string_view body, store::ChannelSpec& out, std::string& error) {
    Fields f(body, kChannelFields);
    store::ChannelPatch patch;
    if (f.require("name") && f.require("base_url") && f.require("api_key") && f.require("models") &&
        read_channel_fields(f, patch)) {
        patch.apply_to(out);
        if (store::Status s = store::validate_channel_spec(out); !s.ok()) f.fail("channel", s.message);
    }
    return done(f, error);
}

bool parse_channel_patch(std::string_view body, store::ChannelPatch& out, std::string& error) {
    Fields f(body, kChannelFields);
    if (f.ok() && f.count() == 0) f.fail("body", "give at least one field to change");
    read_channel_fields(f, out);
    return done(f, error);
}

bool parse_circuit(std::string_view body, CircuitChange& out, std::string& error) {
    Fields f(body, kCircuitFields);
    std::optional<std::string> state;
    std::optional<std::int64_t> for_ms;
    auto open_or_closed = [](std::string_view v) {
        return v == "open" || v == "closed" ? Status::success()
                                            : Status::error(store::Errc::invalid, "must be \"open\" or \"closed\"");
    };
    if (f.require("state") && f.text("state", state, open_or_closed) && f.duration("for", for_ms)) {
        out.open = *state == "open";
        out.for_ms = for_ms.value_or(0);
        if (!out.open && for_ms) f.fail("for", "only an open circuit takes a period");
        else if (for_ms && *for_ms <= 0) f.fail("for", "must be a positive duration");
    }
    return done(f, error);
}

bool parse_block_add(std::string_view body, std::int64_t now_ms, BlockAdd& out, std::string& error) {
    Fields f(body, kBlockFields);
    std::optional<std::string> address;
    std::optional<std::string> reason;
    std::optional<std::int64_t> ttl;
    bool never = false;
    auto prefix = [&](std::string_view v) {
        auto p = parse_ip_prefix(v);
        if (p) out.prefix = *p;
        return p ? Status::success()
                 : Status::error(store::Errc::invalid, cat(in_quotes(v), " is not an IP address or prefix: use e.g. "
                                                                      "192.0.2.7, 10.0.0.0/8 or 2001:db8::/32"));
    };
    auto reason_text = [](std::string_view v) { return store::validate_text("block reason", v); };
    if (f.require("address") && f.text("address", address, prefix) && f.text("reason", reason, reason_text) &&
        f.duration("ttl", ttl, &never)) {
        out.reason = reason.value_or("");
        const std::int64_t t = ttl.value_or(kDefaultBlockTtlMs);
        if (never) out.expires_at_ms = 0;
        else if (t <= 0) f.fail("ttl", "must be positive; use \"never\" for a block that does not expire");
        else if (t > std::numeric_limits<std::int64_t>::max() - now_ms) f.fail("ttl", "too long");
        else out.expires_at_ms = now_ms + t;
    }
    return done(f, error);
}

bool parse_block_remove(std::string_view query, std::string_view body, IpPrefix& out, std::string& error) {
    bool malformed = false;
    std::optional<std::string> address = query_param(query, "address", malformed);
    Fields f(address ? std::string_view() : body, kAddressFields);
    if (malformed) f.fail("address", "malformed percent-escape in the query");
    if (!address && f.require("address")) f.text("address", address, accept_any);
    if (f.ok()) {
        if (auto p = parse_ip_prefix(*address)) out = *p;
        else f.fail("address", cat(in_quotes(*address), " is not an IP address or prefix"));
    }
    return done(f, error);
}

bool parse_backup(std::string_view body, std::string& path, std::string& error) {
    Fields f(body, kBackupFields);
    std::optional<std::string> p;
    auto absolute = [](std::string_view v) {
        return !v.empty() && v.front() == '/' && v.find('\0') == std::string_view::npos
                   ? Status::success()
                   : Status::error(store::Errc::invalid, "must be an absolute directory path");
    };
    if (f.require("path") && f.text("path", p, absolute)) path = std::move(*p);
    return done(f, error);
}

}  // namespace rr::admin

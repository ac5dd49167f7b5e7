// Validation of every value a writer stores. Each check returns Errc::invalid with a
// sentence naming the value and what is accepted.
#include <algorithm>
#include <cctype>

#include "ringrelay/store/ops.hpp"

namespace rr::store {
namespace {

Status invalid(std::string message) {
    return Status::error(Errc::invalid, std::move(message));
}

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 80)) {
        auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u == 0x7f) ? '?' : c;
    }
    if (s.size() > 80) out += "...";
    out += '"';
    return out;
}

// Well-formed UTF-8 (no overlongs, no surrogates) without C0/C1 controls or DEL.
bool is_clean_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            ++i;
            continue;
        }
        std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (len == 0 || c > 0xF4 || i + len > s.size()) return false;
        std::uint32_t cp = c & (0x7F >> len);
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F)) {
            return false;
        }
        i += len;
    }
    return true;
}

bool is_alnum(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool all_of(std::string_view s, std::string_view extra) noexcept {
    return std::all_of(s.begin(), s.end(),
                       [&](char c) { return is_alnum(c) || extra.find(c) != std::string_view::npos; });
}

char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

template <class Check>
Status parse_list(std::string_view csv, std::string_view what, Check check, std::vector<std::string>& out) {
    out.clear();
    for (std::string_view item : split_list(csv)) {
        if (item.empty())
            return invalid(
                cat(what, " list ", quoted(csv), " has an empty element: separate names with single commas"));
        if (Status s = check(item); !s.ok()) return s;
        if (std::find(out.begin(), out.end(), item) == out.end()) out.emplace_back(item);
    }
    if (out.size() > kMaxListItems) return invalid(cat(what, " list has more than 256 elements"));
    return {};
}

// RFC 3986 reg-name restricted to DNS: labels of letters, digits and '-', not starting
// or ending with '-', at most 63 each, 253 in all. Covers IPv4 literals too.
bool is_dns_name(std::string_view host) noexcept {
    if (host.empty() || host.size() > 253) return false;
    if (host.back() == '.') host.remove_suffix(1);
    for (;;) {
        std::size_t dot = host.find('.');
        std::string_view label = host.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        if (!all_of(label, "-")) return false;
        if (dot == std::string_view::npos) return true;
        host.remove_prefix(dot + 1);
    }
}

// Path characters of RFC 3986 (pchar and '/'); '%' must start a %XX escape.
bool is_url_path(std::string_view path) noexcept {
    for (std::size_t i = 0; i < path.size(); ++i) {
        char c = path[i];
        if (c == '%') {
            auto hex = [](char h) { return (h >= '0' && h <= '9') || (lower(h) >= 'a' && lower(h) <= 'f'); };
            if (i + 2 >= path.size() || !hex(path[i + 1]) || !hex(path[i + 2])) return false;
            i += 2;
            continue;
        }
        if (!is_alnum(c) && std::string_view("-._~!$&'()*+,;=:@/").find(c) == std::string_view::npos) return false;
    }
    return true;
}

Status bad_url(std::string_view text, std::string_view why) {
    return invalid(cat("base URL ", quoted(text), " ", why));
}

}  // namespace

Status validate_name(std::string_view what, std::string_view name) {
    if (name.empty() || name.size() > kMaxNameBytes || !is_clean_utf8(name)) {
        return invalid(cat(what, " ", quoted(name), " is invalid: use 1-64 bytes of text without control characters"));
    }
    return {};
}

Status validate_text(std::string_view what, std::string_view text) {
    if (text.size() > kMaxReasonBytes || !is_clean_utf8(text)) {
        return invalid(cat(what, " is invalid: use at most 256 bytes of text without control characters"));
    }
    return {};
}

Status validate_group(std::string_view group) {
    if (group.empty() || group.size() > kMaxGroupBytes || !all_of(group, "_.-")) {
        return invalid(cat("group ", quoted(group), " is invalid: use 1-64 letters, digits, '_', '.' or '-'"));
    }
    return {};
}

Status validate_model(std::string_view model) {
    if (model.empty() || model.size() > kMaxModelBytes || !all_of(model, "_.:/@+-")) {
        return invalid(cat("model ", quoted(model), " is invalid: use 1-128 letters, digits or _ . : / @ + -"));
    }
    return {};
}

Status validate_credential(std::string_view credential) {
    bool visible = std::all_of(credential.begin(), credential.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (credential.empty() || credential.size() > kMaxCredentialBytes || !visible) {
        return invalid("upstream API key is invalid: use 1-1024 visible ASCII characters (no spaces)");
    }
    return {};
}

Status parse_model_list(std::string_view csv, std::vector<std::string>& out) {
    return parse_list(csv, "model", validate_model, out);
}

Status parse_group_list(std::string_view csv, std::vector<std::string>& out) {
    return parse_list(csv, "group", validate_group, out);
}

namespace {

struct PassHeaderName {
    std::string_view name;
    std::uint8_t bit;
};
constexpr PassHeaderName kPassHeaderNames[] = {
    {"OpenAI-Organization", kPassOpenAIOrganization},
    {"OpenAI-Project", kPassOpenAIProject},
};

bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

}  // namespace

Status parse_pass_headers(std::string_view csv, std::uint8_t& bits) {
    bits = 0;
    if (csv == "none") return {};
    for (std::string_view item : split_list(csv)) {
        std::uint8_t bit = 0;
        for (const PassHeaderName& h : kPassHeaderNames)
            if (ascii_iequals(item, h.name)) bit = h.bit;
        if (bit == 0)
            return invalid(cat("pass-headers: ", quoted(item),
                               " is not a header a channel can let through: use OpenAI-Organization, "
                               "OpenAI-Project, or none"));
        bits |= bit;
    }
    return {};
}

std::string pass_headers_text(std::uint8_t bits) {
    std::string out;
    for (const PassHeaderName& h : kPassHeaderNames) {
        if ((bits & h.bit) == 0) continue;
        if (!out.empty()) out += ',';
        out += h.name;
    }
    return out;
}

Status parse_model_map(std::string_view text, std::vector<std::pair<std::string, std::string>>& out) {
    out.clear();
    for (std::string_view entry : split_list(text)) {
        std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos) {
            return invalid(cat("model map entry ", quoted(entry),
                               " has no '=': write requested=upstream, e.g. gpt-4o=gpt-4o-2024-08-06"));
        }
        std::string_view from = entry.substr(0, eq);
        std::string_view to = entry.substr(eq + 1);
        if (Status s = validate_model(from); !s.ok()) return s;
        if (Status s = validate_model(to); !s.ok()) return s;
        for (const auto& existing : out) {
            if (existing.first == from)
                return invalid(cat("model map names ", quoted(from), " twice: keep one entry per model"));
        }
        out.emplace_back(std::string(from), std::string(to));
    }
    if (out.size() > kMaxListItems) return invalid("model map has more than 256 entries");
    return {};
}

Status parse_base_url(std::string_view text, BaseUrl& out) {
    out = BaseUrl{};
    std::string lower_text = lowered(text.substr(0, 8));
    std::string_view rest;
    if (lower_text.starts_with("https://")) {
        out.tls = true;
        rest = text.substr(8);
    } else if (lower_text.starts_with("http://")) {
        rest = text.substr(7);
    } else {
        return bad_url(text, "must start with http:// or https://");
    }
    if (rest.find_first_of("?#") != std::string_view::npos) return bad_url(text, "must not have a query or fragment");
    std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) {
        return bad_url(text, "must not contain user:password@: put the credential in --api-key");
    }
    std::string_view host_text;
    std::string_view port_text;
    bool bracketed = !authority.empty() && authority.front() == '[';
    if (bracketed) {
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return bad_url(text, "has an unclosed '[' around its IPv6 host");
        host_text = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':') return bad_url(text, "has text after its IPv6 host");
        if (!after.empty()) port_text = after.substr(1);
        auto ip = parse_ip(host_text);
        if (!ip || ip->family != 6) return bad_url(text, "has an invalid IPv6 host");
        if (after == ":") return bad_url(text, "has an empty port: write host:port with a port 1-65535");
    } else {
        std::size_t colon = authority.find(':');
        host_text = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return bad_url(text, "has an empty port: write host:port with a port 1-65535");
        }
        if (host_text.empty()) return bad_url(text, "has no host");
        if (!is_dns_name(host_text))
            return bad_url(text, "has an invalid host: use a DNS name, an IPv4 address or [IPv6]");
    }
    out.port = out.tls ? 443 : 80;
    if (!port_text.empty()) {
        auto port = parse_u64(port_text);
        if (!port || *port < 1 || *port > 65535) return bad_url(text, "has an invalid port: use 1-65535");
        out.port = static_cast<std::uint16_t>(*port);
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (!is_url_path(path)) return bad_url(text, "has characters not allowed in a URL path: percent-encode them");
    out.host = lowered(host_text);
    out.path_prefix = std::string(path);
    out.normalized = out.tls ? "https://" : "http://";
    if (bracketed) out.normalized += '[';
    out.host_offset = out.normalized.size();
    out.normalized += out.host;
    if (bracketed) out.normalized += ']';
    if (!port_text.empty()) out.normalized += cat(":", port_text);
    out.path_offset = out.normalized.size();
    out.normalized += out.path_prefix;
    return {};
}

// --- keys ---

void KeyPatch::apply_to(KeySpec& spec) const {
    if (name) spec.name = *name;
    if (group) spec.group = *group;
    if (models) spec.models = *models;
    if (max_concurrency) spec.max_concurrency = *max_concurrency;
    if (max_wait) spec.max_wait = *max_wait;
    if (rpm) spec.rpm = *rpm;
    if (tpm) spec.tpm = *tpm;
    if (quota) spec.quota = *quota;
    if (expires_at_ms) spec.expires_at_ms = *expires_at_ms;
}

bool KeyPatch::empty() const noexcept {
    return !name && !group && !models && !max_concurrency && !max_wait && !rpm && !tpm && !quota && !expires_at_ms;
}

Status validate_key_spec(const KeySpec& spec) {
    if (Status s = validate_name("key name", spec.name); !s.ok()) return s;
    if (Status s = validate_group(spec.group); !s.ok()) return s;
    for (const std::string& m : spec.models) {
        if (Status s = validate_model(m); !s.ok()) return s;
    }
    if (spec.models.size() > kMaxListItems) return invalid("model list has more than 256 elements");
    if (spec.max_concurrency == 0)
        return invalid("max concurrency must be at least 1 (it is the number of requests a key may have in flight)");
    if (spec.expires_at_ms < 0) return invalid("expiry time must not be before 1970");
    return {};
}

// --- channels ---

void ChannelPatch::apply_to(ChannelSpec& spec) const {
    if (name) spec.name = *name;
    if (type) spec.type = *type;
    if (base_url) spec.base_url = *base_url;
    if (api_key) spec.api_key = *api_key;
    if (groups) spec.groups = *groups;
    if (models) spec.models = *models;
    if (model_map) spec.model_map = *model_map;
    if (weight) spec.weight = *weight;
    if (priority) spec.priority = *priority;
    if (enabled) spec.enabled = *enabled;
    if (max_concurrency) spec.max_concurrency = *max_concurrency;
    if (timeout_ms) spec.timeout_ms = *timeout_ms;
    if (pass_headers) spec.pass_headers = *pass_headers;
    if (inject_usage) spec.inject_usage = *inject_usage;
    if (health_path) spec.health_path = *health_path;
    if (health_interval_ms) spec.health_interval_ms = *health_interval_ms;
    if (health_timeout_ms) spec.health_timeout_ms = *health_timeout_ms;
    if (first_byte_timeout_ms) spec.first_byte_timeout_ms = *first_byte_timeout_ms;
}

bool ChannelPatch::empty() const noexcept {
    return !name && !type && !base_url && !api_key && !groups && !models && !model_map && !weight && !priority &&
           !enabled && !max_concurrency && !timeout_ms && !pass_headers && !inject_usage &&
           !health_path && !health_interval_ms && !health_timeout_ms && !first_byte_timeout_ms;
}

Status validate_health_path(std::string_view path) {
    if (path.empty()) return {};
    if (path.front() != '/') return invalid("health path must start with '/' (e.g. /v1/models), or be empty for off");
    if (path.size() > kMaxHealthPathBytes) return invalid("health path is limited to 1024 bytes");
    for (char c : path) {
        if (c <= ' ' || c > '~' || c == '#')
            return invalid("health path may hold visible ASCII only, without spaces or '#'");
    }
    return {};
}

Status validate_channel_spec(const ChannelSpec& spec) {
    if (Status s = validate_name("channel name", spec.name); !s.ok()) return s;
    if (spec.type != ChannelType::openai && spec.type != ChannelType::anthropic) {
        return invalid("channel type must be openai or anthropic");
    }
    BaseUrl url;
    if (Status s = parse_base_url(spec.base_url, url); !s.ok()) return s;
    if (Status s = validate_credential(spec.api_key); !s.ok()) return s;
    if (spec.groups.empty()) return invalid("a channel needs at least one group");
    for (const std::string& g : spec.groups) {
        if (Status s = validate_group(g); !s.ok()) return s;
    }
    if (spec.models.empty()) return invalid("a channel needs at least one model: pass --models m1,m2");
    for (const std::string& m : spec.models) {
        if (Status s = validate_model(m); !s.ok()) return s;
    }
    if (spec.groups.size() > kMaxListItems || spec.models.size() > kMaxListItems ||
        spec.model_map.size() > kMaxListItems) {
        return invalid("channel lists are limited to 256 elements each");
    }
    for (const auto& [from, to] : spec.model_map) {
        if (Status s = validate_model(from); !s.ok()) return s;
        if (Status s = validate_model(to); !s.ok()) return s;
    }
    if (spec.weight == 0) return invalid("weight must be at least 1");
    if (spec.timeout_ms > kMaxTimeoutMs) return invalid("timeout must be between 1ms and 24h, or inherit");
    if ((spec.pass_headers & ~kPassHeadersAll) != 0) return invalid("unknown pass-headers bits");
    if (Status s = validate_health_path(spec.health_path); !s.ok()) return s;
    if (spec.health_interval_ms < kMinHealthIntervalMs || spec.health_interval_ms > kMaxTimeoutMs)
        return invalid("health interval must be between 1s and 24h");
    if (spec.health_timeout_ms == 0 || spec.health_timeout_ms > kMaxTimeoutMs)
        return invalid("health timeout must be between 1ms and 24h");
    if (spec.first_byte_timeout_ms > kMaxTimeoutMs && spec.first_byte_timeout_ms != kFirstByteTimeoutOff)
        return invalid("first-byte timeout must be between 1ms and 24h, off, or inherit");
    return {};
}

}  // namespace rr::store

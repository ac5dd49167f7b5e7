#include "ringrelay/relay/rewrite.hpp"

#include <cstring>

#include "ringrelay/io/peer_address.hpp"

namespace rr::relay {
namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
    const std::size_t at = out.size();
    out.resize(at + name.size() + value.size() + 4);  // one capacity check, then plain copies
    char* p = out.data() + at;
    if (!name.empty()) std::memcpy(p, name.data(), name.size());  // empty views may be null
    p += name.size();
    *p++ = ':';
    *p++ = ' ';
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
    p += value.size();
    *p++ = '\r';
    *p = '\n';
}

// What a proxy does with a field, decided once per field by its length and then one
// comparison: this runs for every field of every message, where a chain of
// case-insensitive compares against a dozen names cost more than the parse itself.
enum class Field : std::uint8_t {
    other, hop_by_hop, connection, host, request_id, expect, forwarded_for, authorization, api_key,
    content_length, accept_encoding, openai_organization, openai_project
};

Field classify(std::string_view n) noexcept {
    using http::iequals;
    switch (n.size()) {
    case 2: return iequals(n, "te") ? Field::hop_by_hop : Field::other;
    case 4: return iequals(n, "host") ? Field::host : Field::other;
    case 6: return iequals(n, "expect") ? Field::expect : Field::other;
    case 7: return iequals(n, "upgrade") || iequals(n, "trailer") ? Field::hop_by_hop : Field::other;
    case 9: return iequals(n, "x-api-key") ? Field::api_key : Field::other;
    case 10:
        if (iequals(n, "connection")) return Field::connection;
        return iequals(n, "keep-alive") ? Field::hop_by_hop : Field::other;
    case 12: return iequals(n, "x-request-id") ? Field::request_id : Field::other;
    case 13: return iequals(n, "authorization") ? Field::authorization : Field::other;
    case 14:
        if (iequals(n, "content-length")) return Field::content_length;
        return iequals(n, "openai-project") ? Field::openai_project : Field::other;
    case 15:
        if (iequals(n, "x-forwarded-for")) return Field::forwarded_for;
        return iequals(n, "accept-encoding") ? Field::accept_encoding : Field::other;
    case 16: return iequals(n, "proxy-connection") ? Field::hop_by_hop : Field::other;
    case 17: return iequals(n, "transfer-encoding") ? Field::hop_by_hop : Field::other;
    case 18: return iequals(n, "proxy-authenticate") ? Field::hop_by_hop : Field::other;
    case 19:
        if (iequals(n, "proxy-authorization")) return Field::hop_by_hop;
        return iequals(n, "openai-organization") ? Field::openai_organization : Field::other;
    default: return Field::other;
    }
}

// The fields a message's Connection headers name (RFC 9110 7.6.1), gathered once.
// Nearly always there are none: "keep-alive" and "close" name no field we forward.
class ConnectionNamed {
public:
    explicit ConnectionNamed(std::span<const http::Header> fields) noexcept {
        for (const http::Header& f : fields) {
            if (f.name.size() != 10 || !http::iequals(f.name, "connection")) continue;
            if (http::iequals(f.value, "keep-alive") || http::iequals(f.value, "close")) continue;
            if (count_ < kMax) values_[count_++] = f.value;
            else overflow_ = true;
        }
    }
    bool names(std::string_view field, std::span<const http::Header> all) const noexcept {
        if (count_ == 0) return false;
        if (overflow_) return http::is_hop_by_hop(field, all);
        for (std::size_t i = 0; i < count_; ++i)
            if (http::is_hop_by_hop(field, values_[i])) return true;
        return false;
    }

private:
    static constexpr std::size_t kMax = 4;
    std::string_view values_[kMax];
    std::size_t count_ = 0;
    bool overflow_ = false;
};

}  // namespace

bool acceptable_request_id(std::string_view v) noexcept {
    if (v.empty() || v.size() > 128) return false;
    for (unsigned char c : v)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}

void capture_request(CapturedRequest& out, const http::RequestHead& h, const PeerAddress& peer,
                     std::string_view request_id, bool strip_client_auth, bool replace_body) {
    out.clear();
    out.line.append(h.method).append(" ");
    out.method_len = h.method.size();
    if (!h.target.empty() && h.target.front() == '/') {
        out.line.append(h.target);
    } else {  // absolute-form from the client: send origin-form upstream
        out.line.append(h.path.empty() ? "/" : h.path);
        if (!h.query.empty()) out.line.append("?").append(h.query);
    }
    std::string_view forwarded_for;
    const ConnectionNamed named(h.fields());
    for (std::size_t i = 0; i < h.header_count; ++i) {
        const http::Header& f = h.headers[i];
        const Field kind = classify(f.name);
        switch (kind) {
        case Field::hop_by_hop:
        case Field::connection:
        case Field::host:
        case Field::request_id:
        case Field::expect:
            continue;
        case Field::forwarded_for:
            forwarded_for = f.value;  // merged into ours below
            continue;
        case Field::authorization:
        case Field::api_key:
            if (strip_client_auth) continue;
            break;
        case Field::content_length:
        case Field::accept_encoding:
            if (replace_body) continue;
            break;
        case Field::openai_organization:
        case Field::openai_project:
            if (named.names(f.name, h.fields())) continue;
            if (!strip_client_auth) break;  // relay mode: an end-to-end field like any other
            append_field(kind == Field::openai_project ? out.openai_project : out.openai_organization, f.name, f.value);
            continue;
        case Field::other:
            if (named.names(f.name, h.fields())) continue;
            break;
        }
        append_field(out.fields, f.name, f.value);
    }
    out.fields.append("X-Forwarded-For: ");
    if (!forwarded_for.empty()) out.fields.append(forwarded_for).append(", ");
    peer.append_to(out.fields);
    out.fields.append("\r\n");
    append_field(out.fields, "X-Request-Id", request_id);
}

void append_upstream_head(std::string& out, const CapturedRequest& req, const upstream::UpstreamTarget& t,
                          std::string_view extra_headers, http::BodyKind client_body,
                          const std::size_t* replaced_body_length) {
    const std::string_view line = req.line;
    out.append(line.substr(0, req.method_len + 1)).append(t.base_path).append(line.substr(req.method_len + 1));
    out.append(" HTTP/1.1\r\n");
    append_field(out, "Host", t.host_header);
    out.append(req.fields);
    out.append(extra_headers);
    if (replaced_body_length) {
        append_field(out, "Content-Length", std::to_string(*replaced_body_length));
    } else if (client_body == http::BodyKind::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    out.append("\r\n");
}

ClientFraming choose_framing(const http::ResponseHead& r, int client_version_minor) noexcept {
    switch (r.body) {
    case http::BodyKind::chunked:
        return client_version_minor >= 1 ? ClientFraming::chunked : ClientFraming::dechunk;
    case http::BodyKind::until_close:
        return ClientFraming::until_close;
    default:
        return ClientFraming::as_upstream;
    }
}

void append_client_head(std::string& out, const http::ResponseHead& r, ClientFraming framing,
                        std::string_view request_id, bool keep_alive, int client_version_minor,
                        HiddenResponseFields hidden) {
    out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(r.reason).append("\r\n");
    const ConnectionNamed named(r.fields());
    for (std::size_t i = 0; i < r.header_count; ++i) {
        const http::Header& f = r.headers[i];
        const Field kind = classify(f.name);
        if (kind == Field::hop_by_hop || kind == Field::connection || kind == Field::request_id) continue;
        if ((kind == Field::openai_organization && hidden.openai_organization) ||
            (kind == Field::openai_project && hidden.openai_project))
            continue;
        const bool end_to_end = kind == Field::other || kind == Field::openai_organization ||
                                kind == Field::openai_project;  // the latter two pass in responses
        if (end_to_end && named.names(f.name, r.fields())) continue;
        append_field(out, f.name, f.value);
    }
    append_field(out, "X-Request-Id", request_id);
    if (framing == ClientFraming::chunked) out.append("Transfer-Encoding: chunked\r\n");
    if (!keep_alive) {
        out.append("Connection: close\r\n");
    } else if (client_version_minor == 0) {
        out.append("Connection: keep-alive\r\n");
    }
    out.append("\r\n");
}

}  // namespace rr::relay

#include "rewrite.hpp"

#include "session.hpp"

namespace rr::relay {
namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

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
    for (std::size_t i = 0; i < h.header_count; ++i) {
        const http::Header& f = h.headers[i];
        if (http::is_hop_by_hop(f.name, h.fields()) || http::iequals(f.name, "host") ||
            http::iequals(f.name, "x-request-id") || http::iequals(f.name, "expect"))
            continue;
        if (http::iequals(f.name, "x-forwarded-for")) {
            forwarded_for = f.value;  // merged into ours below
            continue;
        }
        if (strip_client_auth && (http::iequals(f.name, "authorization") || http::iequals(f.name, "x-api-key")))
            continue;
        if (replace_body && (http::iequals(f.name, "content-length") || http::iequals(f.name, "accept-encoding")))
            continue;
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
                        std::string_view request_id, bool keep_alive, int client_version_minor) {
    out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(r.reason).append("\r\n");
    for (std::size_t i = 0; i < r.header_count; ++i) {
        const http::Header& f = r.headers[i];
        if (http::is_hop_by_hop(f.name, r.fields()) || http::iequals(f.name, "x-request-id")) continue;
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

// Request head parser: request-line (RFC 9112 3), field lines, then the fields that
// decide framing, persistence and routing. See ringrelay/http.hpp for the contract.
#include <algorithm>
#include <utility>

#include "head.hpp"
#include "ringrelay/http.hpp"
#include "syntax.hpp"

namespace rr::http {

namespace {

using detail::fail;
using detail::Scan;

// RFC 9112 2.2: a server SHOULD ignore at least one empty line before the
// request-line (old clients send CRLF after a POST body). We skip any number; they
// count toward max_head_bytes, which bounds them. Their line ends are as strict as
// any other: a bare LF or CR is an error.
Scan skip_empty_lines(std::string_view head, std::size_t& pos, Error& err) noexcept {
    while (pos < head.size() && (head[pos] == '\r' || head[pos] == '\n')) {
        const Scan s = detail::scan_crlf(head, pos, err);
        if (s != Scan::ok) return s;
    }
    return Scan::ok;
}

// request-line = method SP request-target SP HTTP-version CRLF, with exactly one
// SP between the parts (RFC 9112 3: we do not take the "MAY parse on whitespace"
// leniency; it is how request smuggling between lenient and strict hops begins).
//
// The line is scanned in a window of max_request_line + 1 bytes: running past the
// window means the line is too long. Bytes are judged in order, syntax first, so
// every prefix of a buffer gets the same answer as the buffer or "incomplete".
Scan scan_request_line(std::string_view head, std::size_t& pos, RequestHead& out, const Limits& limits,
                       Error& err) noexcept {
    const std::size_t start = pos;
    const bool window_full = head.size() - start > limits.max_request_line;
    const std::string_view line = window_full ? head.substr(0, start + limits.max_request_line + 1) : head;
    const auto ran_out = [&err, window_full] {
        return window_full ? fail(err, Error::uri_too_long) : Scan::incomplete;
    };

    std::size_t p = start;
    while (p < line.size() && detail::is_token_char(line[p])) ++p;
    if (p == line.size()) return ran_out();
    if (line[p] != ' ' || p == start) return fail(err);
    out.method = line.substr(start, p - start);

    const std::size_t target = ++p;
    while (p < line.size() && detail::has_class(line[p], detail::kTargetChar)) ++p;
    if (p == line.size()) return ran_out();
    if (line[p] != ' ' || p == target) return fail(err);
    out.target = line.substr(target, p - target);

    ++p;
    const Scan v = detail::scan_version(line, p, out.version_minor, err);
    if (v == Scan::incomplete || (v == Scan::ok && p == line.size())) return ran_out();
    if (v != Scan::ok) return v;
    const Scan e = detail::scan_crlf(head, p, err);
    if (e == Scan::ok) pos = p;
    return e;
}

void split_path_query(std::string_view path_and_query, RequestHead& out) noexcept {
    const std::size_t q = path_and_query.find('?');
    out.path = path_and_query.substr(0, q);
    out.query = q == std::string_view::npos ? std::string_view() : path_and_query.substr(q + 1);
}

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 7.2: a Host value must be a uri-host with an optional port.
bool is_valid_host(std::string_view host) noexcept {
    for (const char c : host) {
        if (!detail::has_class(c, detail::kHostChar)) return false;
    }
    return true;
}

// absolute-form (RFC 9112 3.2.2): "http://authority/path?query". The authority
// becomes the effective host; an empty path means "/".
Error split_absolute_form(std::string_view target, std::size_t scheme_len, RequestHead& out,
                          std::string_view& authority) noexcept {
    const std::string_view rest = target.substr(scheme_len);
    const std::size_t path_at = std::min(rest.find('/'), rest.find('?'));
    authority = rest.substr(0, path_at);
    // The authority must pass as a Host value; that also refuses userinfo ('@'),
    // which RFC 9110 4.2.4 says to treat as an error in an http(s) URI.
    if (authority.empty() || !is_valid_host(authority)) return Error::bad_request;
    const std::string_view path_and_query =
        path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
    split_path_query(path_and_query, out);
    if (out.path.empty()) out.path = "/";
    return Error::none;
}

// origin-form "/...", asterisk-form "*" (OPTIONS only) or absolute-form
// "http(s)://...". authority-form (CONNECT) is refused: a gateway does not tunnel.
Error split_target(RequestHead& out, std::string_view& authority) noexcept {
    const std::string_view t = out.target;
    if (t.front() == '/') {
        split_path_query(t, out);
        return Error::none;
    }
    if (t == "*") {
        if (out.method != "OPTIONS") return Error::bad_request;
        out.path = t;
        out.query = {};
        return Error::none;
    }
    if (starts_with_icase(t, "http://")) return split_absolute_form(t, 7, out, authority);
    if (starts_with_icase(t, "https://")) return split_absolute_form(t, 8, out, authority);
    return Error::bad_request;
}

// The request fields that are not about framing: routing and auth shortcuts.
struct RequestFields {
    std::size_t host_count = 0;
    bool has_authorization = false;
    bool has_x_api_key = false;
};

// Returns false if a field that must be unique is repeated. Authorization and
// x-api-key are singletons: two keys on one request would let the gateway check one
// while the upstream reads the other.
bool note_request_field(RequestFields& rf, RequestHead& out, const Header& h) noexcept {
    switch (h.name.size()) {
        case 4:
            if (!iequals(h.name, "host")) return true;
            out.host = h.value;
            return ++rf.host_count == 1;
        case 6:
            if (iequals(h.name, "expect") && iequals(h.value, "100-continue")) out.expect_continue = true;
            return true;
        case 9:
            if (!iequals(h.name, "x-api-key")) return true;
            out.x_api_key = h.value;
            return !std::exchange(rf.has_x_api_key, true);
        case 12:
            if (iequals(h.name, "x-request-id") && out.x_request_id.data() == nullptr) out.x_request_id = h.value;
            return true;
        case 13:
            if (!iequals(h.name, "authorization")) return true;
            out.authorization = h.value;
            return !std::exchange(rf.has_authorization, true);
        default:
            return true;
    }
}

// RFC 9112 6.1 / 6.3 for requests: CL and TE together are refused (the classic
// smuggling pair), chunked must be the final and only coding, HTTP/1.0 has no TE.
Error decide_request_body(const detail::Framing& f, RequestHead& out) noexcept {
    out.body = BodyKind::none;
    out.content_length = 0;
    if (f.has_transfer_encoding) {
        if (f.has_content_length || out.version_minor == 0 || f.te_chunked_not_final) return Error::bad_request;
        if (!f.te_chunked_seen || f.te_other_coding) return Error::not_implemented;
        out.body = BodyKind::chunked;
    } else if (f.has_content_length) {
        out.body = BodyKind::content_length;
        out.content_length = f.content_length;
    }
    return Error::none;
}

Error interpret_request_fields(RequestHead& out, std::string_view target_authority) noexcept {
    out.host = out.authorization = out.x_api_key = out.x_request_id = {};
    out.expect_continue = false;
    detail::Framing framing;
    RequestFields rf;
    Error err = Error::none;
    for (const Header& h : out.fields()) {
        if (detail::note_framing_field(framing, h, err)) {
            if (err != Error::none) return err;
        } else if (!note_request_field(rf, out, h)) {
            return Error::bad_request;
        }
    }
    if (rf.host_count == 0 && out.version_minor == 1) return Error::bad_request;
    if (!is_valid_host(out.host)) return Error::bad_request;
    if (target_authority.data() != nullptr) out.host = target_authority;
    if (out.version_minor == 0) out.expect_continue = false;
    out.connection = framing.first_connection;
    out.keep_alive = detail::keep_alive_for(out.version_minor, framing);
    return decide_request_body(framing, out);
}

ParseResult finish(Scan s, Error err, bool clipped) noexcept {
    if (s == Scan::error) return {ParseStatus::error, err};
    // Out of bytes inside the head: past max_head_bytes that is final.
    if (clipped) return {ParseStatus::error, Error::header_too_large};
    return {ParseStatus::incomplete};
}

}  // namespace

ParseResult parse_request(std::string_view buf, RequestHead& out, const Limits& limits) noexcept {
    const bool clipped = buf.size() > limits.max_head_bytes;
    const std::string_view head = buf.substr(0, limits.max_head_bytes);
    const std::size_t max_fields = std::min(limits.max_headers, kMaxHeaders);
    Error err = Error::none;
    std::size_t pos = 0;

    Scan s = skip_empty_lines(head, pos, err);
    if (s == Scan::ok) s = scan_request_line(head, pos, out, limits, err);
    if (s != Scan::ok) return finish(s, err, clipped);
    std::string_view authority;
    err = split_target(out, authority);
    if (err != Error::none) return {ParseStatus::error, err};
    s = detail::scan_field_lines(head, pos, out.headers, max_fields, out.header_count, err);
    if (s != Scan::ok) return finish(s, err, clipped);
    out.head_length = pos;
    err = interpret_request_fields(out, authority);
    if (err != Error::none) return {ParseStatus::error, err};
    return {ParseStatus::complete};
}

}  // namespace rr::http

// Response head parser: status-line (RFC 9112 4), field lines, then framing and
// persistence (RFC 9112 6.3, 9.3). See ringrelay/http.hpp for the contract.
#include <algorithm>

#include "head.hpp"
#include "ringrelay/http.hpp"
#include "syntax.hpp"

namespace rr::http {

namespace {

using detail::fail;
using detail::Scan;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// status-code = 3DIGIT, in 100..599 (RFC 9110 15), followed by SP or the line end.
Scan scan_status_code(std::string_view head, std::size_t& pos, int& status, Error& err) noexcept {
    int code = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        if (pos + i == head.size()) return Scan::incomplete;
        if (!is_digit(head[pos + i])) return fail(err);
        code = code * 10 + (head[pos + i] - '0');
    }
    if (code < 100 || code > 599) return fail(err);
    status = code;
    pos += 3;
    return Scan::ok;
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF. The SP
// before an empty reason is optional here: some servers omit it and the reason is
// meaningless to a client anyway (RFC 9112 4).
Scan scan_status_line(std::string_view head, std::size_t& pos, ResponseHead& out, const Limits& limits,
                      Error& err) noexcept {
    const std::size_t start = pos;
    std::size_t p = pos;
    Scan s = detail::scan_version(head, p, out.version_minor, err);
    if (s != Scan::ok) return s;
    if (p == head.size()) return Scan::incomplete;
    if (head[p++] != ' ') return fail(err);
    s = scan_status_code(head, p, out.status, err);
    if (s != Scan::ok) return s;

    if (p == head.size()) return Scan::incomplete;
    if (head[p] != ' ' && head[p] != '\r') return fail(err);
    const std::size_t reason = head[p] == ' ' ? p + 1 : p;
    p = reason;
    while (p < head.size() && detail::is_value_char(head[p])) ++p;
    if (p - start > limits.max_request_line) return fail(err, Error::header_too_large);
    if (p == head.size()) return Scan::incomplete;
    out.reason = head.substr(reason, p - reason);
    s = detail::scan_crlf(head, p, err);
    if (s == Scan::ok) pos = p;
    return s;
}

bool has_no_body(int status, bool request_was_head) noexcept {
    return request_was_head || status < 200 || status == 204 || status == 304;
}

// RFC 9112 6.3 for responses. We refuse CL together with TE (the RFC lets TE win,
// but we forward heads verbatim, so the client downstream could pick the other
// one) and TE on HTTP/1.0 (6.1: framing is faulty). A final coding other than
// chunked means the body runs until close (6.3 (4)).
Error decide_response_body(const detail::Framing& f, bool request_was_head, ResponseHead& out) noexcept {
    out.body = BodyKind::none;
    out.content_length = f.content_length;
    if (f.has_transfer_encoding) {
        if (f.has_content_length || out.version_minor == 0) return Error::bad_request;
        // "chunked" twice: a sender must never apply it more than once (7.1).
        if (f.te_final_chunked && f.te_chunked_not_final) return Error::bad_request;
    }
    if (has_no_body(out.status, request_was_head)) return Error::none;
    if (f.has_transfer_encoding) {
        out.body = f.te_final_chunked ? BodyKind::chunked : BodyKind::until_close;
    } else if (f.has_content_length) {
        out.body = BodyKind::content_length;
    } else {
        out.body = BodyKind::until_close;
    }
    return Error::none;
}

Error interpret_response_fields(ResponseHead& out, bool request_was_head) noexcept {
    detail::Framing framing;
    Error err = Error::none;
    for (const Header& h : out.fields()) {
        if (detail::note_framing_field(framing, h, err) && err != Error::none) return err;
    }
    out.connection = framing.first_connection;
    err = decide_response_body(framing, request_was_head, out);
    out.keep_alive = detail::keep_alive_for(out.version_minor, framing) && out.body != BodyKind::until_close;
    return err;
}

ParseResult finish(Scan s, Error err, bool clipped) noexcept {
    if (s == Scan::error) return {ParseStatus::error, err};
    if (clipped) return {ParseStatus::error, Error::header_too_large};
    return {ParseStatus::incomplete};
}

}  // namespace

ParseResult parse_response(std::string_view buf, ResponseHead& out, bool request_was_head,
                           const Limits& limits) noexcept {
    const bool clipped = buf.size() > limits.max_head_bytes;
    const std::string_view head = buf.substr(0, limits.max_head_bytes);
    const std::size_t max_fields = std::min(limits.max_headers, kMaxHeaders);
    Error err = Error::none;
    std::size_t pos = 0;

    Scan s = scan_status_line(head, pos, out, limits, err);
    if (s == Scan::ok) s = detail::scan_field_lines(head, pos, out.headers, max_fields, out.header_count, err);
    if (s != Scan::ok) return finish(s, err, clipped);
    out.head_length = pos;
    err = interpret_response_fields(out, request_was_head);
    if (err != Error::none) return {ParseStatus::error, err};
    return {ParseStatus::complete};
}

}  // namespace rr::http

// libFuzzer target: the response head parser as the upstream side of the relay
// uses it. A hash of the input picks the limits and whether the request was HEAD.
// Besides memory safety (ASan/UBSan) it checks:
//  - complete: head_length <= size, every view inside the head, status 100..599,
//    the framing rules (1xx/204/304 and HEAD answers have no body; CL+TE is never
//    accepted; until_close is never keep-alive; HTTP/1.0 is keep-alive only when it
//    says so), the head alone parses the same, every shorter prefix is incomplete;
//  - incomplete: every shorter prefix is incomplete (never an error);
//  - error: the error is one parse_response documents, more bytes keep it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "ringrelay/http.hpp"

using namespace rr::http;
using rr::fuzz::inside;

namespace {

ResponseHead g_response;  // 4 KiB each: static so the fuzz loop does not rebuild them
ResponseHead g_other;

bool has_field(const ResponseHead& h, std::string_view name) {
    for (const Header& f : h.fields()) {
        if (iequals(f.name, name)) return true;
    }
    return false;
}

void check_complete(const ResponseHead& h, std::string_view in, const Limits& limits, bool was_head) {
    FUZZ_CHECK(h.head_length > 0 && h.head_length <= in.size());
    FUZZ_CHECK(h.head_length <= limits.max_head_bytes);
    const std::string_view head = in.substr(0, h.head_length);
    FUZZ_CHECK(head.ends_with("\r\n\r\n") || head.ends_with("\n\n") || head.ends_with("\r\n\n") ||
               head.ends_with("\n\r\n"));
    FUZZ_CHECK(h.status >= 100 && h.status <= 599);
    FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
    FUZZ_CHECK(inside(h.reason, head) && inside(h.connection, head));
    FUZZ_CHECK(h.reason.find_first_of("\r\n") == std::string_view::npos);
    FUZZ_CHECK(h.header_count <= std::min(limits.max_headers, kMaxHeaders));
    for (const Header& f : h.fields()) {
        FUZZ_CHECK(!f.name.empty() && inside(f.name, head) && inside(f.value, head));
        FUZZ_CHECK(f.name.find_first_of(":\r\n \t") == std::string_view::npos);
        FUZZ_CHECK(f.value.find_first_of("\r\n") == std::string_view::npos);
    }
    const bool no_body_status = h.status < 200 || h.status == 204 || h.status == 304;
    if (was_head || no_body_status) FUZZ_CHECK(h.body == BodyKind::none);
    if (h.body == BodyKind::until_close) FUZZ_CHECK(!h.keep_alive);
    if (h.body == BodyKind::chunked) FUZZ_CHECK(has_field(h, "transfer-encoding"));
    if (h.body == BodyKind::content_length) FUZZ_CHECK(has_field(h, "content-length"));
    // A sender may not give both; a relay that accepted both could be smuggled through.
    if (h.body != BodyKind::none) {
        FUZZ_CHECK(!(has_field(h, "content-length") && has_field(h, "transfer-encoding")));
    }
}

void check(std::string_view in, const Limits& limits, bool was_head, std::uint64_t hash) {
    const ParseResult r = parse_response(in, g_response, was_head, limits);
    FUZZ_CHECK((r.status == ParseStatus::error) == (r.error != Error::none));
    if (r.status == ParseStatus::complete) {
        check_complete(g_response, in, limits, was_head);
        const std::size_t len = g_response.head_length;
        const ParseResult alone = parse_response(in.substr(0, len), g_other, was_head, limits);
        FUZZ_CHECK(alone.status == ParseStatus::complete);
        FUZZ_CHECK(g_other.head_length == len && g_other.status == g_response.status);
        FUZZ_CHECK(g_other.body == g_response.body && g_other.keep_alive == g_response.keep_alive);
        FUZZ_CHECK(g_other.content_length == g_response.content_length);
        FUZZ_CHECK(g_other.header_count == g_response.header_count);
        const std::size_t k = hash % len;
        FUZZ_CHECK(parse_response(in.substr(0, k), g_other, was_head, limits).status == ParseStatus::incomplete);
        return;
    }
    if (r.status == ParseStatus::error) {
        FUZZ_CHECK(r.error == Error::bad_request || r.error == Error::header_too_large ||
                   r.error == Error::version_not_supported);
        const std::string longer = std::string(in) + "\r\n\r\n";
        const ParseResult more = parse_response(longer, g_other, was_head, limits);
        FUZZ_CHECK(more.status == ParseStatus::error && more.error == r.error);
    }
    if (in.empty()) return;
    const ParseResult prefix = parse_response(in.substr(0, hash % in.size()), g_other, was_head, limits);
    if (r.status == ParseStatus::incomplete) FUZZ_CHECK(prefix.status == ParseStatus::incomplete);
    if (prefix.status == ParseStatus::error) FUZZ_CHECK(r.status == ParseStatus::error && r.error == prefix.error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::uint64_t hash = rr::fuzz::input_hash(in);
    Limits small;  // so that the header_too_large paths are reached by short inputs
    small.max_request_line = 40;
    small.max_head_bytes = 200;
    small.max_headers = 4;
    for (const Limits& limits : {Limits{}, small}) {
        check(in, limits, false, hash);
        check(in, limits, true, hash >> 7);
    }
    return 0;
}

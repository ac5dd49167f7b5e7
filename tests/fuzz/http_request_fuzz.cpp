// libFuzzer target: the request and response head parsers, and the chunked
// decoder on whatever follows a chunked head. Besides memory safety (ASan/UBSan)
// it checks the parser contract:
//  - complete: head_length <= size, every view inside the head, counts in bounds,
//    the head alone parses the same, and every shorter prefix is incomplete;
//  - incomplete: a shorter prefix is incomplete too (never an error);
//  - error: a shorter prefix that is an error is the same error, and more bytes
//    never turn an error into anything else.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "ringrelay/http.hpp"

using namespace rr::http;
using rr::fuzz::inside;

namespace {

RequestHead g_request;  // 4 KiB each: static so the fuzz loop does not rebuild them
RequestHead g_other;
ResponseHead g_response;
ResponseHead g_other_response;

bool is_ows(char c) { return c == ' ' || c == '\t'; }

void check_fields(std::span<const Header> fields, std::string_view head, const Limits& limits) {
    FUZZ_CHECK(fields.size() <= std::min(limits.max_headers, kMaxHeaders));
    for (const Header& f : fields) {
        FUZZ_CHECK(!f.name.empty());
        FUZZ_CHECK(inside(f.name, head));
        FUZZ_CHECK(inside(f.value, head));
        FUZZ_CHECK(f.value.empty() || (!is_ows(f.value.front()) && !is_ows(f.value.back())));
        FUZZ_CHECK(f.name.find_first_of(":\r\n ") == std::string_view::npos);
        FUZZ_CHECK(f.value.find_first_of("\r\n") == std::string_view::npos);
    }
}

void check_complete_request(const RequestHead& h, std::string_view in, const Limits& limits) {
    FUZZ_CHECK(h.head_length > 0 && h.head_length <= in.size());
    FUZZ_CHECK(h.head_length <= limits.max_head_bytes);
    const std::string_view head = in.substr(0, h.head_length);
    FUZZ_CHECK(!h.method.empty() && inside(h.method, head));
    FUZZ_CHECK(!h.target.empty() && inside(h.target, head));
    FUZZ_CHECK(inside(h.path, head) || h.path == "/");
    FUZZ_CHECK(inside(h.query, head));
    for (const std::string_view v : {h.host, h.authorization, h.x_api_key, h.x_request_id, h.connection}) {
        FUZZ_CHECK(inside(v, head));
    }
    FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
    FUZZ_CHECK(h.body != BodyKind::until_close);
    FUZZ_CHECK(h.body != BodyKind::chunked || h.version_minor == 1);
    FUZZ_CHECK(h.body == BodyKind::content_length || h.content_length == 0);
    FUZZ_CHECK(!h.expect_continue || h.version_minor == 1);
    check_fields(h.fields(), head, limits);
}

// Feeds the bytes after a chunked head to the decoder, checking its contract.
void decode_chunked_rest(std::string_view rest) {
    ChunkedDecoder dec(1 << 20);
    const auto r = dec.feed(rest, [rest](std::string_view span) {
        FUZZ_CHECK(!span.empty());
        FUZZ_CHECK(inside(span, rest));
    });
    FUZZ_CHECK(r.consumed <= rest.size());
    FUZZ_CHECK(r.done == dec.done());
    FUZZ_CHECK(dec.decoded_bytes() <= (1u << 20));
    FUZZ_CHECK(r.error == Error::none || !r.done);
    FUZZ_CHECK(r.error != Error::none || r.done || r.consumed == rest.size());
}

void check_request(std::string_view in, const Limits& limits, std::uint64_t hash) {
    const ParseResult r = parse_request(in, g_request, limits);
    FUZZ_CHECK((r.status == ParseStatus::error) == (r.error != Error::none));
    if (r.status == ParseStatus::complete) {
        check_complete_request(g_request, in, limits);
        const ParseResult head_only = parse_request(in.substr(0, g_request.head_length), g_other, limits);
        FUZZ_CHECK(head_only.status == ParseStatus::complete);
        FUZZ_CHECK(g_other.head_length == g_request.head_length);
        FUZZ_CHECK(g_other.header_count == g_request.header_count);
        FUZZ_CHECK(g_other.body == g_request.body && g_other.content_length == g_request.content_length);
        const std::size_t k = hash % g_request.head_length;
        FUZZ_CHECK(parse_request(in.substr(0, k), g_other, limits).status == ParseStatus::incomplete);
        if (g_request.body == BodyKind::chunked) decode_chunked_rest(in.substr(g_request.head_length));
        return;
    }
    if (in.empty()) return;
    const std::size_t k = hash % in.size();
    const ParseResult prefix = parse_request(in.substr(0, k), g_other, limits);
    if (r.status == ParseStatus::incomplete) FUZZ_CHECK(prefix.status == ParseStatus::incomplete);
    if (prefix.status == ParseStatus::error) FUZZ_CHECK(r.status == ParseStatus::error && r.error == prefix.error);
    if (r.status == ParseStatus::error) {
        const std::string longer = std::string(in) + "\r\n\r\n";
        const ParseResult more = parse_request(longer, g_other, limits);
        FUZZ_CHECK(more.status == ParseStatus::error && more.error == r.error);
    }
}

void check_response(std::string_view in, const Limits& limits, bool request_was_head, std::uint64_t hash) {
    const ParseResult r = parse_response(in, g_response, request_was_head, limits);
    FUZZ_CHECK((r.status == ParseStatus::error) == (r.error != Error::none));
    if (r.status == ParseStatus::complete) {
        const ResponseHead& h = g_response;
        FUZZ_CHECK(h.head_length > 0 && h.head_length <= in.size());
        const std::string_view head = in.substr(0, h.head_length);
        FUZZ_CHECK(h.status >= 100 && h.status <= 599);
        FUZZ_CHECK(inside(h.reason, head) && inside(h.connection, head));
        FUZZ_CHECK(h.body != BodyKind::until_close || !h.keep_alive);
        FUZZ_CHECK(!request_was_head || h.body == BodyKind::none);
        check_fields(h.fields(), head, limits);
        const std::size_t k = hash % h.head_length;
        FUZZ_CHECK(parse_response(in.substr(0, k), g_other_response, request_was_head, limits).status ==
                   ParseStatus::incomplete);
        return;
    }
    if (in.empty()) return;
    const ParseResult prefix =
        parse_response(in.substr(0, hash % in.size()), g_other_response, request_was_head, limits);
    if (r.status == ParseStatus::incomplete) FUZZ_CHECK(prefix.status == ParseStatus::incomplete);
    if (prefix.status == ParseStatus::error) FUZZ_CHECK(r.status == ParseStatus::error && r.error == prefix.error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::uint64_t hash = rr::fuzz::input_hash(in);
    // Default limits, and small ones so the 414/431 paths are reached by short inputs.
    Limits small;
    small.max_request_line = 48;
    small.max_head_bytes = 160;
    small.max_headers = 4;
    for (const Limits& limits : {Limits{}, small}) {
        check_request(in, limits, hash);
        check_response(in, limits, (hash >> 32) & 1, hash >> 1);
    }
    return 0;
}

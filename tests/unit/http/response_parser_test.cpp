// Behaviour of rr::http::parse_response: status line, body framing and
// persistence of upstream answers, and the same field-line strictness as requests.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>

#include "http_test_support.hpp"
#include "ringrelay/http.hpp"

using namespace rr::http;
using rr::http::test::ExactBuffer;
using namespace std::string_literals;

namespace {

ParseResult parse(std::string_view bytes, ResponseHead& out, bool request_was_head = false,
                  const Limits& limits = {}) {
    // The copy lives until the next call, so the views in `out` stay valid.
    static std::unique_ptr<ExactBuffer> last;
    last = std::make_unique<ExactBuffer>(bytes);
    return parse_response(last->view(), out, request_was_head, limits);
}

Error error_of(std::string_view bytes) {
    ResponseHead head;
    const ParseResult r = parse(bytes, head);
    return r.status == ParseStatus::error ? r.error : Error::none;
}

const std::string kOpenAiJson =
    "HTTP/1.1 200 OK\r\nDate: Sat, 22 Jun 2024 10:00:00 GMT\r\nContent-Type: application/json\r\n"
    "Content-Length: 27\r\nConnection: keep-alive\r\nopenai-processing-ms: 412\r\n"
    "x-request-id: req_8d3f1c2b\r\n\r\n{\"id\":\"chatcmpl-1\",\"ok\":1}\n";

const std::string kSseStream =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    "Connection: keep-alive\r\nCache-Control: no-cache\r\n\r\n"
    "16\r\ndata: {\"choices\":[]}\n\n\r\n";

}  // namespace

TEST_CASE("a response split at every byte parses the same") {
    for (const std::string& bytes : {kOpenAiJson, kSseStream}) {
        ResponseHead baseline;
        REQUIRE(parse(bytes, baseline).status == ParseStatus::complete);
        for (std::size_t split = 0; split < baseline.head_length; ++split) {
            CAPTURE(split);
            ResponseHead partial;
            REQUIRE(parse(std::string_view(bytes).substr(0, split), partial).status == ParseStatus::incomplete);
        }
        ResponseHead again;
        REQUIRE(parse(bytes, again).status == ParseStatus::complete);
        CHECK(again.head_length == baseline.head_length);
        CHECK(again.header_count == baseline.header_count);
        CHECK(again.body == baseline.body);
    }
}

TEST_CASE("a Content-Length response has a content_length body and stays alive") {
    ResponseHead h;
    REQUIRE(parse(kOpenAiJson, h).status == ParseStatus::complete);
    CHECK(h.status == 200);
    CHECK(h.reason == "OK");
    CHECK(h.version_minor == 1);
    CHECK(h.body == BodyKind::content_length);
    CHECK(h.content_length == kOpenAiJson.size() - h.head_length);
    CHECK(h.keep_alive);
    CHECK(h.connection == "keep-alive");
    CHECK(find_field(h.fields(), "X-Request-Id")->value == "req_8d3f1c2b");
}

TEST_CASE("a chunked response has a chunked body") {
    ResponseHead h;
    REQUIRE(parse(kSseStream, h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::chunked);
    CHECK(h.keep_alive);
    REQUIRE(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::chunked);
}

TEST_CASE("a response without length runs until close and is not kept alive") {
    ResponseHead h;
    REQUIRE(parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello", h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::until_close);
    CHECK_FALSE(h.keep_alive);
    REQUIRE(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::until_close);
    CHECK_FALSE(h.keep_alive);
}

TEST_CASE("a response whose final coding is not chunked runs until close") {
    ResponseHead h;
    REQUIRE(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::until_close);
    CHECK_FALSE(h.keep_alive);
    REQUIRE(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::until_close);
    CHECK(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") == Error::bad_request);
}

TEST_CASE("1xx, 204, 304 and HEAD answers have no body") {
    ResponseHead h;
    for (const char* line : {"HTTP/1.1 100 Continue", "HTTP/1.1 101 Switching Protocols", "HTTP/1.1 204 No Content",
                             "HTTP/1.1 304 Not Modified"}) {
        CAPTURE(line);
        REQUIRE(parse(std::string(line) + "\r\nContent-Length: 10\r\n\r\n", h).status == ParseStatus::complete);
        CHECK(h.body == BodyKind::none);
        CHECK(h.keep_alive);
    }
    REQUIRE(parse("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", h, true).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::none);
    CHECK(h.content_length == 1234);
    CHECK(h.keep_alive);
    REQUIRE(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", h, true).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::none);
    REQUIRE(parse("HTTP/1.1 200 OK\r\n\r\n", h, true).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::none);
    CHECK(h.keep_alive);
}

TEST_CASE("response keep-alive follows version and Connection") {
    ResponseHead h;
    REQUIRE(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", h).status ==
            ParseStatus::complete);
    CHECK_FALSE(h.keep_alive);
    REQUIRE(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", h).status == ParseStatus::complete);
    CHECK_FALSE(h.keep_alive);
    CHECK(h.version_minor == 0);
    REQUIRE(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n", h).status ==
            ParseStatus::complete);
    CHECK(h.keep_alive);
}

TEST_CASE("a status line must be HTTP/1.x, three digits in 100..599 and a reason") {
    ResponseHead h;
    REQUIRE(parse("HTTP/1.1 404 Not Found\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.status == 404);
    CHECK(h.reason == "Not Found");
    REQUIRE(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.reason.empty());
    REQUIRE(parse("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.reason.empty());
    for (const std::string line : {"HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 X", "HTTP/1.1 600 X",
                             "HTTP/1.1  200 OK", "HTTP/1.1 2x0 OK", "HTTP/1.1 200 O\x01K", "HTTP/1.1", "HTTP/x 200 OK",
                             "http/1.1 200 OK", "HTTP/1.1\t200 OK"}) {
        CAPTURE(line);
        CHECK(error_of(line + "\r\n\r\n") == Error::bad_request);
    }
    CHECK(error_of("HTTP/2.0 200 OK\r\n\r\n") == Error::version_not_supported);
    CHECK(error_of("HTTP/1.2 200 OK\r\n\r\n") == Error::version_not_supported);
}

TEST_CASE("an over-long status line is header_too_large") {
    Limits limits;
    limits.max_request_line = 32;
    ResponseHead h;
    CHECK(parse("HTTP/1.1 200 " + std::string(40, 'x'), h, false, limits).error == Error::header_too_large);
    CHECK(parse("HTTP/1.1 200 " + std::string(19, 'x') + "\r\n\r\n", h, false, limits).status ==
          ParseStatus::complete);
}

TEST_CASE("response field lines are as strict as request field lines") {
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
    CHECK(error_of(ok + "X-A: b\r\n c\r\n\r\n") == Error::bad_request);
    CHECK(error_of(ok + "X-A: b\rc\r\n\r\n") == Error::bad_request);
    CHECK(error_of(ok + "X-A: b\nX-B: c\r\n\r\n") == Error::bad_request);
    CHECK(error_of(ok + "X-A : b\r\n\r\n") == Error::bad_request);
    CHECK(error_of(ok + ": b\r\n\r\n") == Error::bad_request);
    CHECK(error_of(ok + "X-A: b\0c\r\n\r\n"s) == Error::bad_request);
    CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == Error::bad_request);
    CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n") == Error::bad_request);
}

TEST_CASE("a response with Content-Length and Transfer-Encoding is rejected") {
    CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          Error::bad_request);
    CHECK(error_of("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == Error::bad_request);
}

TEST_CASE("reason phrases: RFC 9110's names, and a neutral word for unnamed codes") {
    CHECK(rr::http::reason_phrase(200) == "OK");
    CHECK(rr::http::reason_phrase(429) == "Too Many Requests");
    CHECK(rr::http::reason_phrase(413) == "Content Too Large");
    CHECK(rr::http::reason_phrase(504) == "Gateway Timeout");
    CHECK(rr::http::reason_phrase(529) == "Overloaded");
    CHECK(rr::http::reason_phrase(299) == "Status");
}

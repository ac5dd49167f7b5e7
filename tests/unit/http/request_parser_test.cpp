// Behaviour of rr::http::parse_request: incremental parsing, the fields a proxy
// needs, and each RFC 9112 rule we enforce.
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

// Parses a fresh exact-size copy of bytes. The copy lives until the next call, so
// the views in `out` stay valid for the checks that follow.
ParseResult parse(std::string_view bytes, RequestHead& out, const Limits& limits = {}) {
    static std::unique_ptr<ExactBuffer> last;
    last = std::make_unique<ExactBuffer>(bytes);
    return parse_request(last->view(), out, limits);
}

Error error_of(std::string_view bytes, const Limits& limits = {}) {
    RequestHead head;
    const ParseResult r = parse(bytes, head, limits);
    return r.status == ParseStatus::error ? r.error : Error::none;
}

ParseStatus status_of(std::string_view bytes, const Limits& limits = {}) {
    RequestHead head;
    return parse(bytes, head, limits).status;
}

// Everything a parse produced, with views as (offset, text) so two parses of the
// same bytes in different buffers compare equal exactly when they agree.
std::string describe(const RequestHead& h, const char* base) {
    auto v = [base](std::string_view s) {
        // Built with append: GCC 12 warns falsely (-Wrestrict) on "lit" + std::string.
        std::string out("[");
        out.append(std::to_string(s.data() == nullptr ? -1 : s.data() - base)).append(":").append(s).append("]");
        return out;
    };
    std::string d = v(h.method) + v(h.target) + v(h.path) + v(h.query) + std::to_string(h.version_minor);
    for (const Header& f : h.fields()) d += v(f.name) + "=" + v(f.value);
    d += " len=" + std::to_string(h.head_length) + " body=" + std::to_string(static_cast<int>(h.body)) +
         " cl=" + std::to_string(h.content_length) + " ka=" + std::to_string(h.keep_alive) +
         " ec=" + std::to_string(h.expect_continue);
    d += v(h.host) + v(h.authorization) + v(h.x_api_key) + v(h.x_request_id) + v(h.connection);
    return d;
}

std::string get_with(std::string_view fields) { return "GET / HTTP/1.1\r\nHost: a\r\n" + std::string(fields) + "\r\n"; }

}  // namespace

TEST_CASE("a request split at every byte parses the same") {
    auto samples = test::real_requests();
    samples.push_back({"pipelined pair", test::pipelined_pair()});
    for (const auto& sample : samples) {
        CAPTURE(sample.name);
        const ExactBuffer whole(sample.bytes);
        RequestHead baseline;
        REQUIRE(parse_request(whole.view(), baseline).status == ParseStatus::complete);
        const std::string expected = describe(baseline, whole.data());
        for (std::size_t split = 0; split < baseline.head_length; ++split) {
            CAPTURE(split);
            // The first read ends at `split`: never an error, never complete.
            const ExactBuffer first(std::string_view(sample.bytes).substr(0, split));
            RequestHead partial;
            REQUIRE(parse_request(first.view(), partial).status == ParseStatus::incomplete);
            // The rest arrives; the caller parses the grown buffer from the start.
            const ExactBuffer grown(sample.bytes);
            RequestHead again;
            REQUIRE(parse_request(grown.view(), again).status == ParseStatus::complete);
            REQUIRE(describe(again, grown.data()) == expected);
        }
        // Exactly the head, without any body bytes, is complete too.
        RequestHead head_only;
        CHECK(parse(std::string_view(sample.bytes).substr(0, baseline.head_length), head_only).status ==
              ParseStatus::complete);
    }
}

TEST_CASE("real client requests parse to the fields the proxy needs") {
    const auto samples = test::real_requests();
    RequestHead h;
    for (const auto& s : samples) {
        CAPTURE(s.name);
        const ExactBuffer buf(s.bytes);
        REQUIRE(parse_request(buf.view(), h).status == ParseStatus::complete);
        CHECK(h.head_length <= s.bytes.size());
        if (h.body == BodyKind::content_length && s.name.find("100-continue") == std::string::npos) {
            CHECK(h.content_length == s.bytes.size() - h.head_length);
        }
        if (s.name == "curl GET") {
            CHECK(h.method == "GET");
            CHECK(h.path == "/v1/models");
            CHECK(h.query.empty());
            CHECK(h.host == "127.0.0.1:8080");
            CHECK(h.authorization == "Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7");
            CHECK(h.body == BodyKind::none);
            CHECK(h.keep_alive);
            CHECK(h.header_count == 4);
        } else if (s.name == "ab -k HTTP/1.0 keep-alive") {
            CHECK(h.version_minor == 0);
            CHECK(h.keep_alive);
            CHECK(h.connection == "Keep-Alive");
        } else if (s.name == "OpenAI SDK POST") {
            CHECK(h.method == "POST");
            CHECK(h.body == BodyKind::content_length);
            CHECK(s.bytes.substr(h.head_length).find("\"model\":\"gpt-4o-mini\"") != std::string::npos);
            CHECK(h.x_api_key.empty());
        } else if (s.name == "Anthropic SDK POST") {
            CHECK(h.x_api_key == "rr-9ZyXwVuTsRqPoNmLkJiHgFeDcBa8765432109xYz");
            CHECK(h.authorization.empty());
            CHECK(h.connection == "keep-alive");
            REQUIRE(find_field(h.fields(), "Anthropic-Version") != nullptr);
            CHECK(find_field(h.fields(), "anthropic-version")->value == "2023-06-01");
        } else if (s.name == "curl chunked upload") {
            CHECK(h.body == BodyKind::chunked);
            CHECK(h.content_length == 0);
        } else if (s.name == "curl Expect: 100-continue") {
            CHECK(h.expect_continue);
            CHECK(h.content_length == 1048576);
            CHECK(h.head_length == s.bytes.size());
        } else if (s.name == "Go net/http POST") {
            CHECK(h.path == "/v1/completions");
            CHECK(h.query == "api-version=2024-02-01");
            CHECK(h.x_request_id == "7f3c9a12-55e1-4b8e-9d0f-2c6b1a4e8f90");
        } else if (s.name == "OPTIONS *") {
            CHECK(h.path == "*");
            CHECK(h.body == BodyKind::content_length);
            CHECK(h.content_length == 0);
        }
    }
}

TEST_CASE("pipelined requests parse one after another from head_length") {
    const std::string bytes = test::pipelined_pair();
    const ExactBuffer buf(bytes);
    RequestHead first;
    REQUIRE(parse_request(buf.view(), first).status == ParseStatus::complete);
    CHECK(first.method == "POST");
    REQUIRE(first.body == BodyKind::content_length);
    const std::size_t next = first.head_length + first.content_length;
    RequestHead second;
    REQUIRE(parse_request(buf.view().substr(next), second).status == ParseStatus::complete);
    CHECK(second.method == "GET");
    CHECK(second.path == "/v1/models");
    CHECK(next + second.head_length == bytes.size());
}

TEST_CASE("Content-Length with Transfer-Encoding is rejected with 400") {
    CHECK(error_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          Error::bad_request);
    CHECK(error_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n") ==
          Error::bad_request);
    CHECK(status_for(Error::bad_request) == 400);
}

TEST_CASE("differing duplicate Content-Length is rejected with 400") {
    CHECK(error_of(get_with("Content-Length: 5\r\nContent-Length: 6\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("Content-Length: 5, 6\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("Content-Length: 5,\r\n")) == Error::bad_request);
}

TEST_CASE("identical duplicate Content-Length is accepted, also in list form") {
    for (const char* fields : {"Content-Length: 5\r\nContent-Length: 5\r\n", "Content-Length: 5, 5\r\n",
                               "Content-Length: 5,5\r\n"}) {
        CAPTURE(fields);
        RequestHead h;
        REQUIRE(parse(get_with(fields), h).status == ParseStatus::complete);
        CHECK(h.body == BodyKind::content_length);
        CHECK(h.content_length == 5);
    }
}

TEST_CASE("a non-digit or overflowing Content-Length is rejected with 400") {
    for (const char* value : {"", "-1", "+5", "5a", "0x10", "1 2", "18446744073709551616",
                              "99999999999999999999999"}) {
        CAPTURE(value);
        CHECK(error_of(get_with("Content-Length: " + std::string(value) + "\r\n")) == Error::bad_request);
    }
    RequestHead h;
    REQUIRE(parse(get_with("Content-Length: 18446744073709551615\r\n"), h).status == ParseStatus::complete);
    CHECK(h.content_length == UINT64_MAX);
    REQUIRE(parse(get_with("Content-Length: 007\r\n"), h).status == ParseStatus::complete);
    CHECK(h.content_length == 7);
}

TEST_CASE("Transfer-Encoding with an unknown coding is answered 501") {
    CHECK(error_of(get_with("Transfer-Encoding: gzip\r\n")) == Error::not_implemented);
    CHECK(error_of(get_with("Transfer-Encoding: gzip, chunked\r\n")) == Error::not_implemented);
    CHECK(error_of(get_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")) == Error::not_implemented);
    CHECK(status_for(Error::not_implemented) == 501);
    RequestHead h;
    REQUIRE(parse(get_with("Transfer-Encoding: Chunked\r\n"), h).status == ParseStatus::complete);
    CHECK(h.body == BodyKind::chunked);
}

TEST_CASE("Transfer-Encoding with chunked not last is rejected with 400") {
    CHECK(error_of(get_with("Transfer-Encoding: chunked, gzip\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("Transfer-Encoding: chunked, chunked\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("Transfer-Encoding: \r\n")) == Error::bad_request);
    CHECK(error_of(get_with("Transfer-Encoding: chunked;q=1\r\n")) == Error::bad_request);
}

TEST_CASE("Transfer-Encoding on an HTTP/1.0 request is rejected with 400") {
    CHECK(error_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == Error::bad_request);
}

TEST_CASE("obs-fold continuation lines are rejected with 400") {
    CHECK(error_of(get_with("X-Long: part one\r\n  part two\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("X-Long: part one\r\n\tpart two\r\n")) == Error::bad_request);
    // Whitespace before the first field line is rejected the same way (RFC 9112 2.2).
    CHECK(error_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == Error::bad_request);
}

TEST_CASE("a bare CR anywhere in the head is rejected with 400") {
    CHECK(error_of("GET / HTTP/1.1\rHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GE\rT / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of(get_with("X-A: b\rc\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("X-A\r: b\r\n")) == Error::bad_request);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\n\rX") == Error::bad_request);
    // A CR that is the last byte received may still be followed by its LF.
    CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r") == ParseStatus::incomplete);
}

TEST_CASE("a bare LF line end is rejected with 400") {
    CHECK(error_of("GET / HTTP/1.1\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\n\r\n") == Error::bad_request);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\n\n") == Error::bad_request);
    CHECK(error_of("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
}

TEST_CASE("NUL and other control characters in field values are rejected, HTAB is allowed") {
    for (const char ctl : {'\0', '\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f'}) {
        CAPTURE(static_cast<int>(ctl));
        std::string req = get_with("X-A: b?c\r\n");
        req[req.find('?')] = ctl;
        CHECK(error_of(req) == Error::bad_request);
    }
    RequestHead h;
    REQUIRE(parse(get_with("X-A: b\tc\r\nX-B: caf\xc3\xa9\r\n"), h).status == ParseStatus::complete);
    CHECK(find_field(h.fields(), "x-a")->value == "b\tc");
    CHECK(find_field(h.fields(), "x-b")->value == "caf\xc3\xa9");
}

TEST_CASE("whitespace between field name and colon is rejected with 400") {
    CHECK(error_of(get_with("Content-Length : 5\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("X-A\t: b\r\n")) == Error::bad_request);
}

TEST_CASE("an empty field name is rejected with 400") {
    CHECK(error_of(get_with(": value\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("no-colon-here\r\n")) == Error::bad_request);
}

TEST_CASE("invalid token characters in method or field name are rejected with 400") {
    CHECK(error_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GE@T / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of(" GET / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of(get_with("X[A]: b\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("X\"A: b\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("X/A: b\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("X\xc3\xa9: b\r\n")) == Error::bad_request);
    // Every tchar is fine in a method and a name.
    CHECK(status_of("M!#$%&'*+-.^_`|~9z / HTTP/1.1\r\nHost: a\r\nX!#$%&'*+-.^_`|~9z: b\r\n\r\n") ==
          ParseStatus::complete);
}

TEST_CASE("separators in the request line are single spaces") {
    CHECK(error_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET /  HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
}

TEST_CASE("request-target must be origin-form, asterisk-form for OPTIONS or absolute-form") {
    CHECK(error_of("GET v1/models HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n") ==
          Error::bad_request);
    CHECK(error_of("GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET http:///path HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET http://user@a/path HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET http://a\"b/path HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET /v1/models#frag HTTP/1.1\r\nHost: a\r\n\r\n") == Error::bad_request);
    RequestHead h;
    REQUIRE(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.path == "*");
    REQUIRE(parse("GET /v1/chat?x=1&y=?2 HTTP/1.1\r\nHost: a\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.target == "/v1/chat?x=1&y=?2");
    CHECK(h.path == "/v1/chat");
    CHECK(h.query == "x=1&y=?2");
}

TEST_CASE("an absolute-form target sets path, query and host from the URI") {
    RequestHead h;
    REQUIRE(parse("GET http://api.example.com:8080/v1/models?limit=5 HTTP/1.1\r\nHost: other\r\n\r\n", h).status ==
            ParseStatus::complete);
    CHECK(h.target == "http://api.example.com:8080/v1/models?limit=5");
    CHECK(h.path == "/v1/models");
    CHECK(h.query == "limit=5");
    CHECK(h.host == "api.example.com:8080");
    REQUIRE(parse("GET HTTPS://h?q HTTP/1.1\r\nHost: h\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.path == "/");
    CHECK(h.query == "q");
    CHECK(h.host == "h");
    REQUIRE(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.path == "/");
    CHECK(h.query.empty());
}

TEST_CASE("an over-long request line is answered 414, even before it ends") {
    Limits limits;
    limits.max_request_line = 64;
    const std::string target(64 - 15, 'a');  // "GET /" + target + " HTTP/1.1" = 63 + 1
    const std::string at_limit = "GET /" + target + " HTTP/1.1";
    REQUIRE(at_limit.size() == 63);
    CHECK(status_of(at_limit + "\r\nHost: a\r\n\r\n", limits) == ParseStatus::complete);
    CHECK(status_of("GET /a" + target + " HTTP/1.1\r\nHost: a\r\n\r\n", limits) == ParseStatus::complete);
    CHECK(error_of("GET /aa" + target + " HTTP/1.1\r\nHost: a\r\n\r\n", limits) == Error::uri_too_long);
    // Still waiting for the line end, but already past the limit.
    CHECK(error_of("GET /" + std::string(70, 'a'), limits) == Error::uri_too_long);
    CHECK(error_of(std::string(70, 'G'), limits) == Error::uri_too_long);
    CHECK(status_of("GET /" + std::string(59, 'a'), limits) == ParseStatus::incomplete);
    CHECK(error_of("GET /" + std::string(9 * 1024, 'a')) == Error::uri_too_long);
    // Syntax is judged byte by byte before length: a bad byte within the limit is
    // 400, any byte past it is 414.
    CHECK(error_of("GET /" + target + "HTTX/1.1\r\nHost: a\r\n\r\n", limits) == Error::bad_request);
    CHECK(error_of("GET /" + target + "aaa HTTP/1.x\r\nHost: a\r\n\r\n", limits) == Error::uri_too_long);
    CHECK(status_for(Error::uri_too_long) == 414);
}

TEST_CASE("a head over max_head_bytes is answered 431, even before it ends") {
    Limits limits;
    limits.max_head_bytes = 256;
    std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    const std::string tail = "\r\n\r\n";
    const std::string exact = head + std::string(256 - head.size() - tail.size(), 'p') + tail;
    REQUIRE(exact.size() == 256);
    RequestHead h;
    REQUIRE(parse(exact + "BODY", h, limits).status == ParseStatus::complete);
    CHECK(h.head_length == 256);
    const std::string over = head + std::string(257 - head.size() - tail.size(), 'p') + tail;
    CHECK(error_of(over, limits) == Error::header_too_large);
    // No end of head in sight and already past the limit.
    CHECK(error_of(head + std::string(300, 'p'), limits) == Error::header_too_large);
    CHECK(status_of(head + std::string(200, 'p'), limits) == ParseStatus::incomplete);
    CHECK(status_for(Error::header_too_large) == 431);
}

TEST_CASE("more than max_headers fields is answered 431, even before the head ends") {
    Limits limits;
    limits.max_headers = 3;
    CHECK(status_of(get_with("A: 1\r\nB: 2\r\n"), limits) == ParseStatus::complete);
    CHECK(error_of(get_with("A: 1\r\nB: 2\r\nC: 3\r\n"), limits) == Error::header_too_large);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC", limits) == Error::header_too_large);
    CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n", limits) == ParseStatus::incomplete);
}

TEST_CASE("max_headers above kMaxHeaders is capped at kMaxHeaders") {
    Limits limits;
    limits.max_headers = 1000;
    std::string fields;
    for (std::size_t i = 0; i + 1 < kMaxHeaders; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
    RequestHead h;
    REQUIRE(parse(get_with(fields), h, limits).status == ParseStatus::complete);
    CHECK(h.header_count == kMaxHeaders);
    CHECK(error_of(get_with(fields + "X-last: v\r\n"), limits) == Error::header_too_large);
}

TEST_CASE("versions other than HTTP/1.0 and HTTP/1.1 are answered 505") {
    for (const char* version : {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0", "HTTP/9.9"}) {
        CAPTURE(version);
        CHECK(error_of("GET / " + std::string(version) + "\r\nHost: a\r\n\r\n") == Error::version_not_supported);
    }
    CHECK(status_for(Error::version_not_supported) == 505);
}

TEST_CASE("a malformed version is rejected with 400") {
    for (const char* version : {"HTTP/x", "HTTP/1", "HTTP/1.", "HTTP/11.1", "HTTP/1.10", "http/1.1", "HTTP 1.1",
                                "HTTP/1.1x", "HTTPS/1.1", "HTTP/1,1"}) {
        CAPTURE(version);
        CHECK(error_of("GET / " + std::string(version) + "\r\nHost: a\r\n\r\n") == Error::bad_request);
    }
    // A wrong byte fails at once; a right prefix waits.
    CHECK(error_of("GET / HTTX") == Error::bad_request);
    CHECK(status_of("GET / HTT") == ParseStatus::incomplete);
    CHECK(error_of("GET / HTTP/1.1") == Error::none);
}

TEST_CASE("HTTP/1.1 without Host is rejected with 400; HTTP/1.0 may omit it") {
    CHECK(error_of("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") == Error::bad_request);
    RequestHead h;
    REQUIRE(parse("GET / HTTP/1.0\r\n\r\n", h).status == ParseStatus::complete);
    CHECK(h.host.empty());
    // An empty Host is valid (RFC 9110 7.2: a target without authority).
    CHECK(status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n") == ParseStatus::complete);
}

TEST_CASE("more than one Host is rejected with 400") {
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n") == Error::bad_request);
    CHECK(error_of("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n") == Error::bad_request);
}

TEST_CASE("an invalid Host value is rejected with 400") {
    for (const char* host : {"a b", "a/b", "a@b", "a?b", "a#b", "a\"b"}) {
        CAPTURE(host);
        CHECK(error_of("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n") == Error::bad_request);
    }
    for (const char* host : {"127.0.0.1:8080", "[::1]:443", "api.example.com", "xn--bcher-kva.example"}) {
        CAPTURE(host);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n") == ParseStatus::complete);
    }
}

TEST_CASE("empty lines before the request line are skipped and counted in head_length") {
    RequestHead h;
    const std::string request = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    REQUIRE(parse("\r\n\r\n" + request, h).status == ParseStatus::complete);
    CHECK(h.method == "GET");
    CHECK(h.path == "/x");
    CHECK(h.head_length == 4 + request.size());
    CHECK(status_of("\r\n") == ParseStatus::incomplete);
    CHECK(error_of("\r\r\n") == Error::bad_request);
}

TEST_CASE("HTTP/1.1 keeps the connection alive unless Connection has close") {
    RequestHead h;
    REQUIRE(parse(get_with(""), h).status == ParseStatus::complete);
    CHECK(h.keep_alive);
    for (const char* value : {"close", "Close", "keep-alive, close", "TE, CLOSE", ", close ,"}) {
        CAPTURE(value);
        REQUIRE(parse(get_with("Connection: " + std::string(value) + "\r\n"), h).status == ParseStatus::complete);
        CHECK_FALSE(h.keep_alive);
    }
    REQUIRE(parse(get_with("Connection: keep-alive\r\nConnection: close\r\n"), h).status == ParseStatus::complete);
    CHECK_FALSE(h.keep_alive);
    CHECK(h.connection == "keep-alive");
    REQUIRE(parse(get_with("Connection: closed\r\n"), h).status == ParseStatus::complete);
    CHECK(h.keep_alive);
    CHECK(error_of(get_with("Connection: close\"\r\n")) == Error::bad_request);
}

TEST_CASE("HTTP/1.0 closes the connection unless Connection has keep-alive") {
    RequestHead h;
    REQUIRE(parse("GET / HTTP/1.0\r\n\r\n", h).status == ParseStatus::complete);
    CHECK_FALSE(h.keep_alive);
    for (const char* value : {"keep-alive", "Keep-Alive", "Keep-Alive, TE", "TE,keep-alive"}) {
        CAPTURE(value);
        REQUIRE(parse("GET / HTTP/1.0\r\nConnection: " + std::string(value) + "\r\n\r\n", h).status ==
                ParseStatus::complete);
        CHECK(h.keep_alive);
    }
    REQUIRE(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", h).status == ParseStatus::complete);
    CHECK_FALSE(h.keep_alive);
}

TEST_CASE("Expect: 100-continue is reported on HTTP/1.1 only") {
    RequestHead h;
    REQUIRE(parse(get_with("Expect: 100-Continue\r\n"), h).status == ParseStatus::complete);
    CHECK(h.expect_continue);
    REQUIRE(parse(get_with(""), h).status == ParseStatus::complete);
    CHECK_FALSE(h.expect_continue);
    REQUIRE(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", h).status ==
            ParseStatus::complete);
    CHECK_FALSE(h.expect_continue);
}

TEST_CASE("field values have surrounding whitespace removed, inner whitespace kept") {
    RequestHead h;
    REQUIRE(parse(get_with("X-A: \t spaced  out \t \r\nX-Empty:   \r\nX-B:tight\r\n"), h).status ==
            ParseStatus::complete);
    CHECK(find_field(h.fields(), "X-A")->value == "spaced  out");
    CHECK(find_field(h.fields(), "X-Empty")->value.empty());
    CHECK(find_field(h.fields(), "X-B")->value == "tight");
    CHECK(h.fields()[0].name == "Host");
}

TEST_CASE("a second Authorization or x-api-key is rejected with 400") {
    CHECK(error_of(get_with("Authorization: Bearer a\r\nauthorization: Bearer b\r\n")) == Error::bad_request);
    CHECK(error_of(get_with("x-api-key: a\r\nX-Api-Key: b\r\n")) == Error::bad_request);
    RequestHead h;
    REQUIRE(parse(get_with("Authorization: Bearer a\r\nx-api-key: b\r\n"), h).status == ParseStatus::complete);
    CHECK(h.authorization == "Bearer a");
    CHECK(h.x_api_key == "b");
}

TEST_CASE("the first X-Request-Id is the one reported") {
    RequestHead h;
    REQUIRE(parse(get_with("X-Request-Id: one\r\nx-request-id: two\r\n"), h).status == ParseStatus::complete);
    CHECK(h.x_request_id == "one");
}

TEST_CASE("once a prefix is an error every longer buffer is the same error") {
    const std::string bad[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x00\r\n\r\n"s,
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n",
        // Past the 100-byte line limit inside the version: too long, whatever follows.
        "GET /" + std::string(92, 'a') + " HTTP/1.x\r\nHost: a\r\n\r\n",
        // A bad byte before the limit is a syntax error, even though the line is long.
        "GET /" + std::string(88, 'a') + " HTTX/1.1\r\nHost: a\r\n\r\n",
    };
    Limits limits;
    limits.max_request_line = 100;
    for (const std::string& req : bad) {
        CAPTURE(req);
        const Error final_error = error_of(req, limits);
        REQUIRE(final_error != Error::none);
        bool seen_error = false;
        for (std::size_t n = 0; n <= req.size(); ++n) {
            CAPTURE(n);
            const Error e = error_of(req.substr(0, n), limits);
            if (seen_error) REQUIRE(e == final_error);
            if (e != Error::none) {
                REQUIRE(e == final_error);
                seen_error = true;
            }
        }
    }
}

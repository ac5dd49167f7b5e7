// Behaviour of the header utilities and the error table.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "http_test_support.hpp"
#include "ringrelay/http.hpp"

using namespace rr::http;

TEST_CASE("iequals compares ASCII case-insensitively and nothing else") {
    CHECK(iequals("Content-Length", "content-length"));
    CHECK(iequals("X-API-KEY", "x-api-key"));
    CHECK(iequals("", ""));
    CHECK_FALSE(iequals("content-length", "content-lengt"));
    CHECK_FALSE(iequals("a", "b"));
    // Only A-Z fold: '@' (0x40) and '`' (0x60) differ by the case bit but are not letters.
    CHECK_FALSE(iequals("@", "`"));
    CHECK_FALSE(iequals("[", "{"));
    CHECK_FALSE(iequals("\xc3\x89", "\xc3\xa9"));
}

TEST_CASE("hop-by-hop fields are the RFC 9110 list plus those named in Connection") {
    for (const char* name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
                             "Upgrade", "Proxy-Authenticate", "proxy-authorization"}) {
        CAPTURE(name);
        CHECK(is_hop_by_hop(name, ""));
    }
    for (const char* name : {"Host", "Authorization", "Content-Length", "X-Request-Id", "Trailers", "T"}) {
        CAPTURE(name);
        CHECK_FALSE(is_hop_by_hop(name, ""));
    }
    CHECK(is_hop_by_hop("X-Secret", "close, x-secret"));
    CHECK(is_hop_by_hop("x-secret", "X-Secret"));
    CHECK_FALSE(is_hop_by_hop("X-Secret", "close, x-secret-2"));
    CHECK_FALSE(is_hop_by_hop("", "close, ,"));
}

TEST_CASE("hop-by-hop looks at every Connection field of a message") {
    RequestHead h;
    const std::string req =
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nX-One: 1\r\nconnection: x-two\r\nX-Two: 2\r\n\r\n";
    REQUIRE(parse_request(req, h).status == ParseStatus::complete);
    CHECK(h.connection == "keep-alive");
    CHECK(is_hop_by_hop("X-Two", h.fields()));
    CHECK_FALSE(is_hop_by_hop("X-Two", h.connection));
    CHECK_FALSE(is_hop_by_hop("X-One", h.fields()));
    CHECK(is_hop_by_hop("Upgrade", h.fields()));
}

TEST_CASE("find_field returns the first field with the name, or nullptr") {
    RequestHead h;
    REQUIRE(parse_request("GET / HTTP/1.1\r\nHost: a\r\nAccept: 1\r\naccept: 2\r\n\r\n", h).status ==
            ParseStatus::complete);
    REQUIRE(find_field(h.fields(), "ACCEPT") != nullptr);
    CHECK(find_field(h.fields(), "ACCEPT")->value == "1");
    CHECK(find_field(h.fields(), "Accept-Encoding") == nullptr);
}

TEST_CASE("each error maps to its status and has its own message") {
    const std::pair<Error, int> table[] = {
        {Error::bad_request, 400},  {Error::uri_too_long, 414},          {Error::header_too_large, 431},
        {Error::not_implemented, 501}, {Error::version_not_supported, 505}, {Error::bad_chunk, 400},
        {Error::body_too_large, 413}, {Error::none, 400},
    };
    std::set<std::string_view> messages;
    for (const auto& [error, status] : table) {
        CAPTURE(static_cast<int>(error));
        CHECK(status_for(error) == status);
        CHECK_FALSE(message_for(error).empty());
        messages.insert(message_for(error));
    }
    CHECK(messages.size() == std::size(table));
}

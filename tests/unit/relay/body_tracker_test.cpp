#include <doctest/doctest.h>

#include <string>

#include "ringrelay/relay/body_tracker.hpp"

using rr::http::BodyKind;
using rr::relay::BodyTracker;

TEST_CASE("a content-length body ends exactly at its length, leaving the next message") {
    BodyTracker b(BodyKind::content_length, 5);
    CHECK_FALSE(b.done());
    CHECK(b.measure("abc") == 3);
    CHECK(b.measure("deGET /") == 2);
    CHECK(b.done());
    CHECK(b.bytes() == 5);
    CHECK(b.measure("more") == 0);
}

TEST_CASE("an empty content-length body and no body are done at once") {
    CHECK(BodyTracker(BodyKind::content_length, 0).done());
    CHECK(BodyTracker(BodyKind::none, 0).done());
}

TEST_CASE("a chunked body is passed raw and its end found across splits") {
    const std::string wire = "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
    for (std::size_t split = 1; split < wire.size(); ++split) {
        BodyTracker b(BodyKind::chunked, 0);
        std::string decoded;
        const std::size_t n1 = b.measure(std::string_view(wire).substr(0, split), &decoded);
        const std::size_t n2 = b.measure(std::string_view(wire).substr(split), &decoded);
        CHECK(n1 + n2 == wire.size());
        CHECK(b.done());
        CHECK(decoded == "Wikipedia");
    }
}

TEST_CASE("bytes after the last chunk belong to the next message") {
    BodyTracker b(BodyKind::chunked, 0);
    const std::string wire = "3\r\nabc\r\n0\r\n\r\nPOST / HTTP/1.1\r\n";
    CHECK(b.measure(wire) == wire.find("POST"));
    CHECK(b.done());
}

TEST_CASE("a bad chunk size is an error, not a body") {
    BodyTracker b(BodyKind::chunked, 0);
    b.measure("zz\r\nabc\r\n");
    CHECK(b.error() != rr::http::Error::none);
    CHECK_FALSE(b.done());
}

TEST_CASE("a chunked body over the limit is refused") {
    BodyTracker b(BodyKind::chunked, 0, 4);
    b.measure("5\r\nabcde\r\n0\r\n\r\n");
    CHECK(b.error() == rr::http::Error::body_too_large);
}

TEST_CASE("a close-delimited body ends only at end of stream") {
    BodyTracker b(BodyKind::until_close, 0);
    CHECK(b.measure("anything") == 8);
    CHECK_FALSE(b.done());
    b.end_of_stream();
    CHECK(b.done());
}

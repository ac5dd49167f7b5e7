// The one method rule: exact, case-sensitive tokens (RFC 9110 9.1).
#include <doctest/doctest.h>

#include "ringrelay/http.hpp"

using namespace rr::http;

TEST_CASE("method_of names the standard methods spelled exactly") {
    CHECK(method_of("GET") == Method::get);
    CHECK(method_of("HEAD") == Method::head);
    CHECK(method_of("POST") == Method::post);
    CHECK(method_of("PUT") == Method::put);
    CHECK(method_of("DELETE") == Method::del);
    CHECK(method_of("PATCH") == Method::patch);
    CHECK(method_of("OPTIONS") == Method::options);
}

TEST_CASE("a method in another case is an extension method, not the standard one") {
    for (const char* token : {"head", "Head", "hEAD", "get", "Get", "post", "Post", "delete", "options"}) {
        CAPTURE(token);
        CHECK(method_of(token) == Method::other);
    }
    CHECK(method_of("") == Method::other);
    CHECK(method_of("HEADX") == Method::other);
    CHECK(method_of("HEA") == Method::other);
    CHECK(method_of("BREW") == Method::other);
}

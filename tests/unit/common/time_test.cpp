// RFC 3339 timestamps.
#include <doctest/doctest.h>

#include "ringrelay/common.hpp"

using rr::format_rfc3339;
using rr::parse_rfc3339;

TEST_CASE("RFC 3339 times parse to Unix milliseconds") {
    CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_rfc3339("2025-01-31T12:00:00Z") == 1738324800000LL);
    CHECK(parse_rfc3339("2000-02-29T23:59:59Z") == 951868799000LL);
    CHECK(parse_rfc3339("2025-01-31t12:00:00z") == 1738324800000LL);
}

TEST_CASE("offsets and fractions are applied") {
    CHECK(parse_rfc3339("2025-01-31T14:00:00+02:00") == 1738324800000LL);
    CHECK(parse_rfc3339("2025-01-31T07:30:00-04:30") == 1738324800000LL);
    CHECK(parse_rfc3339("2025-01-31T12:00:00.250Z") == 1738324800250LL);
    CHECK(parse_rfc3339("2025-01-31T12:00:00.5Z") == 1738324800500LL);
    CHECK(parse_rfc3339("2025-01-31T12:00:00.123456789Z") == 1738324800123LL);
    // A leap second lands on the first second of the next minute.
    CHECK(parse_rfc3339("2016-12-31T23:59:60Z") == parse_rfc3339("2017-01-01T00:00:00Z"));
}

TEST_CASE("malformed or impossible times are rejected") {
    for (const char* bad :
         {"", "2025-01-31", "2025-01-31T12:00:00", "2025-01-31 12:00:00Z", "2025-02-30T00:00:00Z",
          "2023-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z", "2025-01-31T24:00:00Z",
          "2025-01-31T12:60:00Z", "2025-01-31T12:00:61Z", "2025-01-31T12:00:00.Z", "2025-01-31T12:00:00+2:00",
          "2025-01-31T12:00:00+24:00", "1969-12-31T23:59:59Z", "2025-01-31T12:00:00Zjunk", "25-01-31T12:00:00Z"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_rfc3339(bad).has_value());
    }
}

TEST_CASE("format_rfc3339 writes UTC and keeps milliseconds only when present") {
    CHECK(format_rfc3339(0) == "1970-01-01T00:00:00Z");
    CHECK(format_rfc3339(1738324800000LL) == "2025-01-31T12:00:00Z");
    CHECK(format_rfc3339(1738324800250LL) == "2025-01-31T12:00:00.250Z");
    CHECK(format_rfc3339(951868799000LL) == "2000-02-29T23:59:59Z");
    CHECK(format_rfc3339(-1000) == "1969-12-31T23:59:59Z");
}

TEST_CASE("format and parse are inverse over many instants") {
    for (std::int64_t t = 0; t < 4'000'000'000'000LL; t += 97'654'321'123LL) {
        CAPTURE(t);
        CHECK(parse_rfc3339(format_rfc3339(t)) == t);
    }
}

TEST_CASE("the wall clock is after 2020") {
    CHECK(rr::now_unix_ms() > parse_rfc3339("2020-01-01T00:00:00Z").value());
}

// Durations, sizes and integers: the value syntax of every flag and setting.
#include <doctest/doctest.h>

#include <chrono>
#include <limits>

#include "ringrelay/common.hpp"

using namespace std::chrono_literals;
using rr::parse_duration;

TEST_CASE("durations accept ms, s, m, h, d and a bare number of seconds") {
    CHECK(parse_duration("500ms") == 500ms);
    CHECK(parse_duration("30s") == 30s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("24h") == 24h);
    CHECK(parse_duration("30d") == std::chrono::milliseconds(30LL * 86400 * 1000));
    CHECK(parse_duration("45") == 45s);
    CHECK(parse_duration("0") == 0ms);
    CHECK(parse_duration("0ms") == 0ms);
}

TEST_CASE("durations reject everything else") {
    for (const char* bad : {"", "-1s", "+1s", "1.5s", "10x", "s", "ms", "1 s", " 1s", "1s ", "1S", "1sec", "1h30m",
                            "99999999999999999999d", "106751991167301d", "9223372036854776s"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_duration(bad).has_value());
    }
}

TEST_CASE("the largest duration that fits is accepted") {
    CHECK(parse_duration("9223372036854775807ms") ==
          std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max()));
    CHECK(parse_duration("106751991167d").has_value());
}

TEST_CASE("format_duration picks the largest exact unit and round-trips") {
    CHECK(rr::format_duration(90s) == "90s");
    CHECK(rr::format_duration(86'400'000ms) == "1d");
    CHECK(rr::format_duration(1500ms) == "1500ms");
    CHECK(rr::format_duration(0ms) == "0s");
    CHECK(rr::format_duration(2h) == "2h");
    CHECK(rr::format_duration(120s) == "2m");
    CHECK(rr::format_duration(-30s) == "-30s");
    for (std::chrono::milliseconds ms : {1ms, 999ms, 1000ms, 61000ms, 3600000ms, 129600000ms, 172800000ms}) {
        CAPTURE(ms.count());
        CHECK(parse_duration(rr::format_duration(ms)) == ms);
    }
}

TEST_CASE("sizes take binary and decimal units") {
    CHECK(rr::parse_size("8MiB") == 8ull << 20);
    CHECK(rr::parse_size("512KiB") == 512ull << 10);
    CHECK(rr::parse_size("1GiB") == 1ull << 30);
    CHECK(rr::parse_size("8MB") == 8'000'000ull);
    CHECK(rr::parse_size("1000") == 1000ull);
    CHECK(rr::parse_size("64k") == 64ull << 10);
    CHECK(rr::parse_size("64K") == 64ull << 10);
    CHECK(rr::parse_size("10B") == 10ull);
    CHECK(rr::parse_size("2tib") == 2ull << 40);
    CHECK(rr::parse_size("0") == 0ull);
}

TEST_CASE("sizes reject malformed text and overflow") {
    for (const char* bad :
         {"", "1.5M", "-1", "8 MiB", "1XB", "MiB", "1MiBs", "20000000000GiB", "18446744073709551616"}) {
        CAPTURE(bad);
        CHECK_FALSE(rr::parse_size(bad).has_value());
    }
}

TEST_CASE("parse_u64 reads plain decimal within range") {
    CHECK(rr::parse_u64("0") == 0ull);
    CHECK(rr::parse_u64("42") == 42ull);
    CHECK(rr::parse_u64("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
    for (const char* bad :
         {"", "18446744073709551616", "+1", "-1", " 1", "1 ", "0x10", "1e3", "123456789012345678901"}) {
        CAPTURE(bad);
        CHECK_FALSE(rr::parse_u64(bad).has_value());
    }
}

TEST_CASE("parse_i64 reads an optional minus sign within range") {
    CHECK(rr::parse_i64("-5") == -5);
    CHECK(rr::parse_i64("7") == 7);
    CHECK(rr::parse_i64("9223372036854775807") == std::numeric_limits<std::int64_t>::max());
    CHECK(rr::parse_i64("-9223372036854775808") == std::numeric_limits<std::int64_t>::min());
    for (const char* bad : {"", "-", "9223372036854775808", "-9223372036854775809", "--1", "+1"}) {
        CAPTURE(bad);
        CHECK_FALSE(rr::parse_i64(bad).has_value());
    }
}

TEST_CASE("split_list trims each element and keeps empty ones for the caller to reject") {
    CHECK(rr::split_list("").empty());
    auto items = rr::split_list(" a, b ,c");
    REQUIRE(items.size() == 3);
    CHECK(items[0] == "a");
    CHECK(items[1] == "b");
    CHECK(items[2] == "c");
    auto holes = rr::split_list("a,,b,");
    REQUIRE(holes.size() == 4);
    CHECK(holes[1].empty());
    CHECK(holes[3].empty());
    CHECK(rr::split_list("x=y;z", ';').size() == 2);
}

TEST_CASE("cat joins pieces of any string type") {
    std::string s = "b";
    CHECK(rr::cat("a", s, std::string_view("c"), std::string("d")) == "abcd");
    CHECK(rr::cat().empty());
}

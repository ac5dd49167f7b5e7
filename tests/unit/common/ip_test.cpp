// IP addresses and prefixes.
#include <doctest/doctest.h>

#include "ringrelay/common.hpp"

using rr::IpAddress;
using rr::parse_ip;
using rr::parse_ip_prefix;

TEST_CASE("IPv4 and IPv6 addresses parse and format back") {
    auto v4 = parse_ip("192.0.2.7");
    REQUIRE(v4);
    CHECK(v4->family == 4);
    CHECK(v4->bytes[0] == 192);
    CHECK(v4->bytes[3] == 7);
    CHECK(v4->bytes[4] == 0);
    CHECK(rr::format_ip(*v4) == "192.0.2.7");
    auto v6 = parse_ip("2001:DB8::1");
    REQUIRE(v6);
    CHECK(v6->family == 6);
    CHECK(rr::format_ip(*v6) == "2001:db8::1");
}

TEST_CASE("malformed addresses are rejected") {
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "::g", "[::1]", "1.2.3.4/8", " 1.2.3.4",
                            "fe80::1%eth0", "localhost"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_ip(bad).has_value());
    }
}

TEST_CASE("prefixes clear host bits and a bare address is a full-length prefix") {
    auto p = parse_ip_prefix("10.1.2.3/8");
    REQUIRE(p);
    CHECK(p->length == 8);
    CHECK(rr::format_ip_prefix(*p) == "10.0.0.0/8");
    auto host = parse_ip_prefix("10.1.2.3");
    REQUIRE(host);
    CHECK(host->length == 32);
    CHECK(rr::format_ip_prefix(*host) == "10.1.2.3");
    auto v6 = parse_ip_prefix("2001:db8:ffff::1/33");
    REQUIRE(v6);
    CHECK(rr::format_ip_prefix(*v6) == "2001:db8:8000::/33");
    CHECK(parse_ip_prefix("::1")->length == 128);
    CHECK(parse_ip_prefix("0.0.0.0/0")->length == 0);
}

TEST_CASE("bad prefix lengths are rejected") {
    for (const char* bad :
         {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/+8", "::/129", "10.0.0.0/8/8"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_ip_prefix(bad).has_value());
    }
}

TEST_CASE("a prefix contains exactly the addresses that share its leading bits") {
    auto p = parse_ip_prefix("192.0.2.0/24").value();
    CHECK(p.contains(parse_ip("192.0.2.0").value()));
    CHECK(p.contains(parse_ip("192.0.2.255").value()));
    CHECK_FALSE(p.contains(parse_ip("192.0.3.0").value()));
    CHECK_FALSE(p.contains(parse_ip("::ffff:192.0.2.1").value()));  // other family
    auto odd = parse_ip_prefix("10.64.0.0/11").value();
    CHECK(odd.contains(parse_ip("10.95.255.255").value()));
    CHECK_FALSE(odd.contains(parse_ip("10.96.0.0").value()));
}

TEST_CASE("IPv4-mapped IPv6 addresses unmap to IPv4; others are unchanged") {
    auto mapped = rr::unmap_ipv4(parse_ip("::ffff:198.51.100.9").value());
    CHECK(mapped.family == 4);
    CHECK(rr::format_ip(mapped) == "198.51.100.9");
    auto plain = parse_ip("2001:db8::9").value();
    CHECK(rr::unmap_ipv4(plain) == plain);
    auto v4 = parse_ip("1.2.3.4").value();
    CHECK(rr::unmap_ipv4(v4) == v4);
}

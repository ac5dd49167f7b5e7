// The block list: prefix matching for IPv4 and IPv6, most specific wins, expiry.
#include <doctest/doctest.h>

#include <random>

#include "store_test_support.hpp"

using namespace rr::store;
using rr::store::test::Fixture;

namespace {

rr::IpPrefix prefix(const char* text) {
    return rr::parse_ip_prefix(text).value();
}
rr::IpAddress ip(const char* text) {
    return rr::parse_ip(text).value();
}

void block(Fixture& f, const char* text, const char* reason, std::int64_t expires_at = 0) {
    Status s = add_block(*f.env, prefix(text), reason, expires_at, f.now);
    INFO(s.message);
    REQUIRE(s.ok());
}

// The reason of the block matching `addr` at `at`, or "" when none does.
std::string match(Fixture& f, const char* addr, std::int64_t at) {
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    BlockView b = r.find_block(ip(addr), at);
    return b.valid() ? std::string(b.reason()) : std::string();
}

}  // namespace

TEST_CASE("a single IPv4 address blocks only itself") {
    Fixture f;
    block(f, "192.0.2.7", "one");
    CHECK(match(f, "192.0.2.7", f.now) == "one");
    CHECK(match(f, "192.0.2.6", f.now).empty());
    CHECK(match(f, "192.0.2.8", f.now).empty());
}

TEST_CASE("an IPv4 prefix blocks its range and nothing beside it") {
    Fixture f;
    block(f, "198.51.100.0/24", "net");
    CHECK(match(f, "198.51.100.0", f.now) == "net");
    CHECK(match(f, "198.51.100.255", f.now) == "net");
    CHECK(match(f, "198.51.101.0", f.now).empty());
    CHECK(match(f, "198.51.99.255", f.now).empty());
}

TEST_CASE("the most specific matching block wins") {
    Fixture f;
    block(f, "10.0.0.0/8", "wide");
    block(f, "10.1.0.0/16", "mid");
    block(f, "10.1.2.3", "host");
    CHECK(match(f, "10.1.2.3", f.now) == "host");
    CHECK(match(f, "10.1.2.4", f.now) == "mid");
    CHECK(match(f, "10.2.0.1", f.now) == "wide");
    CHECK(match(f, "11.0.0.1", f.now).empty());
}

TEST_CASE("IPv6 prefixes match IPv6 addresses") {
    Fixture f;
    block(f, "2001:db8::/32", "doc");
    block(f, "2001:db8:1:2::/64", "subnet");
    block(f, "2001:db8:1:2::99", "host");
    CHECK(match(f, "2001:db8:ffff::1", f.now) == "doc");
    CHECK(match(f, "2001:db8:1:2::1", f.now) == "subnet");
    CHECK(match(f, "2001:db8:1:2::99", f.now) == "host");
    CHECK(match(f, "2001:db9::1", f.now).empty());
}

TEST_CASE("families do not mix, except IPv4-mapped IPv6 addresses, which match IPv4 blocks") {
    Fixture f;
    block(f, "192.0.2.0/24", "v4");
    block(f, "::/0", "all-v6");
    CHECK(match(f, "::ffff:192.0.2.1", f.now) == "v4");
    CHECK(match(f, "::ffff:203.0.113.1", f.now).empty());
    CHECK(match(f, "2001:db8::1", f.now) == "all-v6");
    CHECK(match(f, "203.0.113.1", f.now).empty());
}

TEST_CASE("a /0 blocks every address of its family") {
    Fixture f;
    block(f, "0.0.0.0/0", "everyone");
    CHECK(match(f, "1.2.3.4", f.now) == "everyone");
    CHECK(match(f, "255.255.255.255", f.now) == "everyone");
    CHECK(match(f, "::1", f.now).empty());
}

TEST_CASE("an expired block does not match, and a wider live block still does") {
    Fixture f;
    block(f, "10.0.0.0/8", "wide");
    block(f, "10.1.0.0/16", "short-lived", f.now + 1000);
    CHECK(match(f, "10.1.0.1", f.now + 999) == "short-lived");
    CHECK(match(f, "10.1.0.1", f.now + 1000) == "wide");
    block(f, "172.16.0.0/12", "gone", f.now + 1);
    CHECK(match(f, "172.16.0.1", f.now + 1).empty());
}

TEST_CASE("adding a block again replaces its reason and expiry; removing it stops the match") {
    Fixture f;
    block(f, "192.0.2.0/24", "first", f.now + 10);
    block(f, "192.0.2.0/24", "second");
    CHECK(match(f, "192.0.2.1", f.now + 100) == "second");
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    int count = 0;
    r.for_each_block([&](const BlockView& b) {
        ++count;
        CHECK(rr::format_ip_prefix(b.prefix()) == "192.0.2.0/24");
        CHECK(b.expires_at_ms() == 0);
        CHECK(b.created_at_ms() == f.now);
    });
    CHECK(count == 1);
    r.reset();
    REQUIRE(remove_block(*f.env, prefix("192.0.2.0/24"), f.now).ok());
    CHECK(match(f, "192.0.2.1", f.now).empty());
    CHECK(remove_block(*f.env, prefix("192.0.2.0/24"), f.now).code == Errc::not_found);
    CHECK(remove_block(*f.env, prefix("10.0.0.0/8"), f.now).code == Errc::not_found);
}

TEST_CASE("a block with host bits set, a bad reason or a negative expiry is refused") {
    Fixture f;
    rr::IpPrefix p = prefix("10.0.0.0/8");
    p.network.bytes[3] = 1;
    CHECK(add_block(*f.env, p, "", 0, f.now).code == Errc::invalid);
    CHECK(add_block(*f.env, prefix("10.0.0.0/8"), "bad\nreason", 0, f.now).code == Errc::invalid);
    CHECK(add_block(*f.env, prefix("10.0.0.0/8"), "", -5, f.now).code == Errc::invalid);
    CHECK(add_block(*f.env, rr::IpPrefix{}, "", 0, f.now).code == Errc::invalid);
    CHECK(match(f, "10.0.0.1", f.now).empty());
}

TEST_CASE("random block lists match exactly like a scan of every block") {
    Fixture f;
    std::mt19937_64 rng(42);
    struct Entry {
        rr::IpPrefix p;
        std::string reason;
        std::int64_t expires;
    };
    std::vector<Entry> entries;
    auto random_addr = [&](std::uint8_t family) {
        rr::IpAddress a;
        a.family = family;
        // Few distinct leading bytes so prefixes overlap often.
        for (std::size_t i = 0; i < a.size(); ++i) a.bytes[i] = static_cast<std::uint8_t>(i < 2 ? rng() % 3 : rng());
        return a;
    };
    for (int i = 0; i < 400; ++i) {
        std::uint8_t family = rng() % 2 ? 4 : 6;
        auto length = static_cast<std::uint8_t>(rng() % (family == 4 ? 33 : 129));
        if (rng() % 3 == 0) length = static_cast<std::uint8_t>(family == 4 ? 8 + rng() % 9 : 16 + rng() % 17);
        rr::IpPrefix p{rr::mask_ip(random_addr(family), length), length};
        std::int64_t expires = rng() % 4 == 0 ? f.now + 500 : 0;
        std::string reason = rr::cat("b", std::to_string(i));
        REQUIRE(add_block(*f.env, p, reason, expires, f.now).ok());
        std::erase_if(entries, [&](const Entry& e) { return e.p == p; });
        entries.push_back({p, reason, expires});
    }
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    for (int i = 0; i < 3000; ++i) {
        rr::IpAddress a = random_addr(rng() % 2 ? 4 : 6);
        std::int64_t at = rng() % 2 ? f.now : f.now + 1000;
        const Entry* best = nullptr;
        for (const Entry& e : entries) {
            bool live = e.expires == 0 || at < e.expires;
            if (live && e.p.contains(a) && (best == nullptr || e.p.length > best->p.length)) best = &e;
        }
        BlockView got = r.find_block(a, at);
        CAPTURE(rr::format_ip(a));
        REQUIRE(got.valid() == (best != nullptr));
        if (best != nullptr) CHECK(got.reason() == best->reason);
    }
}

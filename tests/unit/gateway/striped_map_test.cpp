// The striped table pieces KeySlots and RateLimits share
// (include/ringrelay/gateway/striped_map.hpp): the per-stripe open-addressing map and
// the stripe array.
#include "ringrelay/gateway/striped_map.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace rr::gateway {
namespace {

struct Entry {
    std::uint64_t key = 0;
    bool used = false;
    std::uint64_t value = 0;
    std::string name{};  // not trivially copyable: moves must carry it along

    bool in_use() const noexcept { return used; }
};

// Inserts `key` with `value`, checking that the slot it is handed is empty (a default
// Entry with the key set): nothing of an erased entry may show through.
template <class Map>
Entry& put(Map& map, std::uint64_t key, std::uint64_t value) {
    return map.insert(key, [&](Entry& fresh) {
        CHECK(fresh.key == key);
        CHECK(!fresh.used);
        CHECK(fresh.value == 0);
        CHECK(fresh.name.empty());
        fresh.used = true;
        fresh.value = value;
        fresh.name = "key-" + std::to_string(key);
    });
}

// Every key has the same home slot: every insert collides, every erase shifts.
struct SameHome {
    std::uint64_t operator()(std::uint64_t) const noexcept { return 5; }
};
// Keys collide in pairs and runs wrap around the end of the slots.
struct FewHomes {
    std::uint64_t operator()(std::uint64_t key) const noexcept { return ~std::uint64_t{0} - key / 2; }
};

template <class Map>
void check_holds(Map& map, const std::map<std::uint64_t, std::uint64_t>& want) {
    REQUIRE(map.size() == want.size());
    for (const auto& [key, value] : want) {
        const Entry* e = map.find(key);
        REQUIRE(e != nullptr);
        CHECK(e->value == value);
        CHECK(e->name == "key-" + std::to_string(key));
    }
    std::size_t seen = 0;
    map.for_each([&](Entry& e) {
        ++seen;
        CHECK(want.count(e.key) == 1);
    });
    CHECK(seen == want.size());
}

TEST_CASE("a probing map finds what was inserted, and nothing once it is erased") {
    ProbingMap<Entry> map;
    CHECK(map.find(1) == nullptr);  // no slots yet
    CHECK(map.capacity() == 0);

    Entry& one = put(map, 1, 10);
    CHECK(one.value == 10);
    put(map, 0, 20);  // key 0 is a key like any other
    REQUIRE(map.find(1) != nullptr);
    CHECK(map.find(1)->value == 10);
    REQUIRE(map.find(0) != nullptr);
    CHECK(map.find(0)->value == 20);
    CHECK(map.find(2) == nullptr);
    CHECK(map.size() == 2);

    map.find(1)->value = 11;  // entries are mutable in place
    CHECK(map.find(1)->value == 11);

    map.erase(*map.find(1));
    CHECK(map.find(1) == nullptr);
    REQUIRE(map.find(0) != nullptr);
    CHECK(map.find(0)->value == 20);
    CHECK(map.size() == 1);

    const ProbingMap<Entry>& view = map;
    REQUIRE(view.find(0) != nullptr);
    CHECK(view.find(0)->name == "key-0");
}

TEST_CASE("a probing map grows at load 1/2 and shrinks back below load 1/8") {
    ProbingMap<Entry> map;
    std::map<std::uint64_t, std::uint64_t> want;
    for (std::uint64_t k = 0; k < 1000; ++k) {
        put(map, k, k * 3);
        want[k] = k * 3;
        CHECK(map.size() * 2 <= map.capacity());
    }
    check_holds(map, want);
    CHECK(map.capacity() == 2048);

    for (std::uint64_t k = 0; k < 990; ++k) {
        map.erase(*map.find(k));
        want.erase(k);
        CHECK((map.capacity() == ProbingMap<Entry>::kMinSlots || map.size() * 8 >= map.capacity()));
    }
    check_holds(map, want);
    CHECK(map.capacity() == 64);

    for (std::uint64_t k = 990; k < 1000; ++k) map.erase(*map.find(k));
    CHECK(map.size() == 0);
    CHECK(map.capacity() == ProbingMap<Entry>::kMinSlots);
}

TEST_CASE("a probing map keeps every entry reachable when all keys share one home slot") {
    ProbingMap<Entry, SameHome> map;
    std::map<std::uint64_t, std::uint64_t> want;
    for (std::uint64_t k = 100; k < 140; ++k) {
        put(map, k, k);
        want[k] = k;
    }
    check_holds(map, want);

    // Erase from the front, middle and end of the one long run: the shift must close
    // each hole, or a later key would stop being found at the first empty slot.
    for (std::uint64_t k : {100, 120, 139, 101, 138, 119}) {
        map.erase(*map.find(k));
        want.erase(k);
        check_holds(map, want);
        CHECK(map.find(k) == nullptr);
    }
}

TEST_CASE("an erased key can be inserted again, anew") {
    ProbingMap<Entry, FewHomes> map;
    for (std::uint64_t k = 0; k < 6; ++k) put(map, k, k);
    map.erase(*map.find(2));
    CHECK(map.find(2) == nullptr);
    CHECK(map.find(3) != nullptr);  // 2's partner in its home slot

    Entry& again = put(map, 2, 200);
    CHECK(again.value == 200);
    REQUIRE(map.find(2) != nullptr);
    CHECK(map.find(2)->value == 200);
    CHECK(map.size() == 6);

    // Erase and reinsert every key in turn: the map never holds one twice.
    for (std::uint64_t k = 0; k < 6; ++k) {
        map.erase(*map.find(k));
        put(map, k, k + 1000);
    }
    std::map<std::uint64_t, std::uint64_t> want;
    for (std::uint64_t k = 0; k < 6; ++k) want[k] = k + 1000;
    check_holds(map, want);
}

TEST_CASE("erase_if judges each entry once, including runs that wrap around the end") {
    ProbingMap<Entry, FewHomes> map;  // FewHomes puts the low keys in the last slots
    std::map<std::uint64_t, std::uint64_t> want;
    for (std::uint64_t k = 0; k < 60; ++k) {
        put(map, k, k);
        want[k] = k;
    }
    std::multiset<std::uint64_t> judged;
    const std::size_t dropped = map.erase_if([&](const Entry& e) {
        judged.insert(e.key);
        return e.key % 3 == 0;
    });
    CHECK(dropped == 20);
    for (std::uint64_t k = 0; k < 60; ++k) {
        CHECK(judged.count(k) >= 1);
        if (k % 3 == 0) want.erase(k);
    }
    check_holds(map, want);

    CHECK(map.erase_if([](const Entry&) { return true; }) == 40);
    CHECK(map.size() == 0);
    CHECK(map.capacity() == ProbingMap<Entry>::kMinSlots);
}

// Against std::map: random inserts, erases and sweeps over a small key space with
// colliding homes, so runs form, wrap and get shifted all the time.
TEST_CASE("a probing map agrees with std::map over random operations") {
    std::mt19937_64 rng(20261203);
    ProbingMap<Entry, FewHomes> map;
    std::map<std::uint64_t, std::uint64_t> want;
    for (int step = 0; step < 20'000; ++step) {
        const std::uint64_t key = rng() % 64;
        const unsigned op = static_cast<unsigned>(rng() % 16);
        Entry* e = map.find(key);
        REQUIRE((e != nullptr) == (want.count(key) == 1));
        if (op == 0) {
            const std::uint64_t cut = rng() % 64;
            const std::size_t dropped = map.erase_if([&](const Entry& x) { return x.key < cut; });
            const std::size_t before = want.size();
            std::erase_if(want, [&](const auto& kv) { return kv.first < cut; });
            REQUIRE(dropped == before - want.size());
        } else if (e == nullptr) {
            put(map, key, static_cast<std::uint64_t>(step));
            want[key] = static_cast<std::uint64_t>(step);
        } else if (op < 8) {
            map.erase(*e);
            want.erase(key);
        } else {
            e->value = static_cast<std::uint64_t>(step);
            want[key] = static_cast<std::uint64_t>(step);
        }
        REQUIRE(map.size() == want.size());
    }
    check_holds(map, want);
}

struct Stripe {
    int uses = 0;
};

TEST_CASE("key stripes: a power-of-two count, one fixed stripe per key") {
    CHECK_THROWS_AS(KeyStripes<Stripe>(0, "test"), std::invalid_argument);
    CHECK_THROWS_AS(KeyStripes<Stripe>(6, "test"), std::invalid_argument);
    CHECK_THROWS_AS(KeyStripes<Stripe>(kMaxKeyStripes * 2, "test"), std::invalid_argument);
    try {
        KeyStripes<Stripe> bad(3, "rate limit");
        FAIL("3 stripes accepted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "rate limit stripes must be a power of two up to 65536");
    }

    KeyStripes<Stripe> stripes(16, "test");
    CHECK(stripes.size() == 16);
    CHECK(stripes.end() - stripes.begin() == 16);
    std::set<std::size_t> used;
    for (std::uint64_t k = 0; k < 1000; ++k) {
        const std::size_t i = stripes.index_of(k);
        REQUIRE(i < 16);
        CHECK(stripes.index_of(k) == i);
        CHECK(&stripes.for_key(k) == stripes.begin() + i);
        ++stripes.for_key(k).uses;
        used.insert(i);
    }
    CHECK(used.size() == 16);  // sequential keys spread over all stripes
    int total = 0;
    for (const Stripe& s : stripes) total += s.uses;
    CHECK(total == 1000);

    KeyStripes<Stripe> one(1, "test");
    CHECK(one.index_of(12345) == 0);
}

}  // namespace
}  // namespace rr::gateway

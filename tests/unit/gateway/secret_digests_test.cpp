#include "ringrelay/gateway/secret_digests.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using rr::gateway::SecretDigests;

namespace {

// A stand-in digest that differs for every secret (the memo never computes one itself).
SecretDigests::Digest fake_digest(std::string_view secret) {
    SecretDigests::Digest d{};
    for (std::size_t i = 0; i < secret.size(); ++i) d[i % d.size()] = static_cast<std::uint8_t>(d[i % d.size()] * 31 + secret[i]);
    d[31] = static_cast<std::uint8_t>(secret.size());
    return d;
}

std::string random_secret(std::mt19937_64& rng) {
    static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string s = "rr-";
    for (int i = 0; i < 40; ++i) s += kChars[rng() % 62];
    return s;
}

}  // namespace

TEST_CASE("a remembered secret gives back its digest; an unknown one gives nothing") {
    SecretDigests memo;
    const std::string a = "rr-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    CHECK(memo.find(a) == nullptr);
    memo.remember(a, fake_digest(a));
    REQUIRE(memo.find(a) != nullptr);
    CHECK(*memo.find(a) == fake_digest(a));
    CHECK(memo.find("rr-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") == nullptr);
    CHECK(memo.hits() == 2);
    CHECK(memo.misses() == 2);
}

TEST_CASE("a secret sharing a slot but not every byte never matches") {
    SecretDigests memo(1);  // every secret lands in the one slot
    const std::string a = "rr-0123456789012345678901234567890123456789";
    std::string last_differs = a;
    last_differs.back() = 'X';
    memo.remember(a, fake_digest(a));
    CHECK(memo.find(last_differs) == nullptr);
    CHECK(memo.find(a.substr(0, a.size() - 1)) == nullptr);  // a prefix
    CHECK(memo.find(a + "9") == nullptr);                   // an extension
    CHECK(memo.find(std::string(a.size(), '\0')) == nullptr);
    REQUIRE(memo.find(a) != nullptr);
    // The newest secret takes the slot.
    memo.remember(last_differs, fake_digest(last_differs));
    CHECK(memo.find(a) == nullptr);
    REQUIRE(memo.find(last_differs) != nullptr);
    CHECK(*memo.find(last_differs) == fake_digest(last_differs));
}

TEST_CASE("empty and over-long secrets are never remembered") {
    SecretDigests memo;
    const std::string long_secret(SecretDigests::kMaxSecret + 1, 'k');
    memo.remember(long_secret, fake_digest(long_secret));
    CHECK(memo.find(long_secret) == nullptr);
    memo.remember("", fake_digest(""));
    CHECK(memo.find("") == nullptr);
    const std::string longest(SecretDigests::kMaxSecret, 'k');
    memo.remember(longest, fake_digest(longest));
    REQUIRE(memo.find(longest) != nullptr);
    CHECK(*memo.find(longest) == fake_digest(longest));
}

TEST_CASE("many more secrets than slots: a find gives the right digest or nothing, never another's") {
    SecretDigests memo(64);
    std::mt19937_64 rng(7);
    std::vector<std::string> secrets;
    for (int i = 0; i < 5000; ++i) {
        secrets.push_back(random_secret(rng));
        memo.remember(secrets.back(), fake_digest(secrets.back()));
    }
    int wrong = 0, found = 0;
    for (const std::string& s : secrets) {
        if (const auto* d = memo.find(s)) {
            ++found;
            wrong += *d != fake_digest(s);
        }
    }
    CHECK(wrong == 0);
    CHECK(found > 0);
    CHECK(found <= 64);
    // The last secret remembered always holds its slot.
    CHECK(memo.find(secrets.back()) != nullptr);
}

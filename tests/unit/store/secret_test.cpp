// Secrets, ids and hashes.
#include <doctest/doctest.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <map>
#include <random>
#include <set>
#include <string>

#include "ringrelay/store/ops.hpp"

using namespace rr::store;

namespace {

std::string hex(const Sha256& h) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : h) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

}  // namespace

TEST_CASE("a secret is rr- and 40 base62 characters, different every time") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        std::string s;
        REQUIRE(generate_secret(s).ok());
        CHECK(s.size() == 43);
        CHECK(s.starts_with("rr-"));
        CHECK(looks_like_secret(s));
        seen.insert(s);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("secret characters are uniform over base62 (no modulo bias)") {
    // 620,000 characters: 10,000 expected per symbol, standard deviation ~100. Modulo
    // without rejection would give the first 8 symbols 25% more; we allow 5%.
    std::map<char, int> counts;
    for (int i = 0; i < 15'500; ++i) {
        std::string s;
        REQUIRE(generate_secret(s).ok());
        for (char c : s.substr(3)) ++counts[c];
    }
    CHECK(counts.size() == 62);
    for (const auto& [c, n] : counts) {
        CAPTURE(c);
        CHECK(n > 9'500);
        CHECK(n < 10'500);
    }
}

TEST_CASE("ids carry their prefix and the requested number of base62 characters") {
    std::string id;
    REQUIRE(generate_id("k_", 12, id).ok());
    CHECK(id.size() == 14);
    CHECK(id.starts_with("k_"));
    std::string other;
    REQUIRE(generate_id("k_", 12, other).ok());
    CHECK(id != other);
}

TEST_CASE("looks_like_secret rejects other shapes") {
    CHECK_FALSE(looks_like_secret(""));
    CHECK_FALSE(looks_like_secret("rr-abc"));
    CHECK_FALSE(looks_like_secret(rr::cat("sk-", std::string(40, 'a'))));
    CHECK_FALSE(looks_like_secret(rr::cat("rr-", std::string(39, 'a'), "-")));
    CHECK_FALSE(looks_like_secret(rr::cat("rr-", std::string(41, 'a'))));
    CHECK(looks_like_secret(rr::cat("rr-", std::string(40, 'Z'))));
}

TEST_CASE("hash_secret is SHA-256") {
    CHECK(hex(hash_secret("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex(hash_secret("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // FIPS 180-2's two-block message (the padding spills into a second block).
    CHECK(hex(hash_secret("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// Keys created before the switch to nettle were hashed by wolfSSL: both must agree on
// every input, or those keys would stop authenticating.
TEST_CASE("hash_secret agrees with wolfSSL's SHA-256 on random inputs of every length up to 200 bytes") {
    std::mt19937 rng(20261203);
    for (std::size_t length = 0; length <= 200; ++length) {
        std::string input(length, '\0');
        for (char& c : input) c = static_cast<char>(rng());
        Sha256 expected{};
        wc_Sha256 sha;
        REQUIRE(wc_InitSha256(&sha) == 0);
        wc_Sha256Update(&sha, reinterpret_cast<const byte*>(input.data()), static_cast<word32>(input.size()));
        wc_Sha256Final(&sha, expected.data());
        wc_Sha256Free(&sha);
        CAPTURE(length);
        CHECK(hash_secret(input) == expected);
    }
}

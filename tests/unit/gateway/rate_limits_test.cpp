// Per-key RPM, TPM and pending usage: REFERENCE.md section 3 (429 rate_limited with
// Retry-After, 429 quota_exceeded) and the contract in
// include/ringrelay/gateway/rate_limits.hpp.
#include "ringrelay/gateway/rate_limits.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rr::gateway {
namespace {

using Decision = RateLimits::Decision;

constexpr std::uint64_t kKey = 42;
constexpr std::int64_t kT0 = 1'700'000'000'000;  // a unix-ms "now"

// Requests allowed in a row at one instant.
int allowed_in_a_row(RateLimits& limits, std::uint64_t key, std::uint32_t rpm, std::int64_t now_ms) {
    int n = 0;
    while (limits.check_request(key, rpm, now_ms).allowed) ++n;
    return n;
}

// Retry-After is honest: refused one millisecond before it ends (when it is more than
// a second), allowed once it has passed. Leaves one request counted.
void check_retry_after_is_honest(RateLimits& limits, std::uint64_t key, std::uint32_t rpm, std::int64_t now_ms) {
    const Decision refused = limits.check_request(key, rpm, now_ms);
    REQUIRE_FALSE(refused.allowed);
    REQUIRE(refused.retry_after_s >= 1);
    const std::int64_t retry_at = now_ms + std::int64_t{refused.retry_after_s} * 1000;
    if (refused.retry_after_s > 1) CHECK_FALSE(limits.check_request(key, rpm, retry_at - 1000).allowed);
    CHECK(limits.check_request(key, rpm, retry_at).allowed);
}

TEST_CASE("RPM allows exactly rpm requests at once, then refuses") {
    RateLimits limits;
    CHECK(allowed_in_a_row(limits, kKey, 10, kT0) == 10);
    const Decision refused = limits.check_request(kKey, 10, kT0);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_s == 6);  // one request refills every 60/10 s
    CHECK_FALSE(limits.check_request(kKey, 10, kT0 + 5'999).allowed);
    CHECK(limits.check_request(kKey, 10, kT0 + 6'000).allowed);
    CHECK_FALSE(limits.check_request(kKey, 10, kT0 + 6'000).allowed);
}

TEST_CASE("RPM Retry-After is whole seconds until the next request is allowed") {
    for (std::uint32_t rpm : {1u, 7u, 60u, 61u, 1000u, 100'000u}) {
        CAPTURE(rpm);
        RateLimits limits;
        REQUIRE(allowed_in_a_row(limits, kKey, rpm, kT0) == static_cast<int>(rpm));
        check_retry_after_is_honest(limits, kKey, rpm, kT0);
    }
}

TEST_CASE("RPM recovers fully after a minute without requests") {
    RateLimits limits;
    REQUIRE(allowed_in_a_row(limits, kKey, 5, kT0) == 5);
    CHECK(allowed_in_a_row(limits, kKey, 5, kT0 + 30'000) == 2);  // half a minute: half the bucket
    CHECK(allowed_in_a_row(limits, kKey, 5, kT0 + 90'000) == 5);
}

TEST_CASE("RPM sustained load gets rpm per minute after the first burst") {
    RateLimits limits;
    int allowed = 0;
    for (std::int64_t t = 0; t <= 300'000; t += 100) allowed += limits.check_request(kKey, 30, kT0 + t).allowed;
    CHECK(allowed == 30 + 5 * 30);  // the full bucket, then 5 minutes of refill
}

TEST_CASE("RPM keys are independent") {
    RateLimits limits;
    REQUIRE(allowed_in_a_row(limits, 1, 3, kT0) == 3);
    CHECK(allowed_in_a_row(limits, 2, 3, kT0) == 3);
}

TEST_CASE("a changed rpm applies from the next request") {
    RateLimits limits;
    REQUIRE(allowed_in_a_row(limits, kKey, 1, kT0) == 1);
    // Raised: the bucket keeps its level and refills at the new rate (1 per 600 ms).
    CHECK_FALSE(limits.check_request(kKey, 100, kT0).allowed);
    CHECK(limits.check_request(kKey, 100, kT0 + 600).allowed);
    // Lowered: what is left in the bucket is capped at the new capacity.
    const std::int64_t later = kT0 + 120'000;
    for (int i = 0; i < 10; ++i) REQUIRE(limits.check_request(kKey, 100, later).allowed);
    CHECK(allowed_in_a_row(limits, kKey, 2, later) == 2);
}

TEST_CASE("time running backwards for a key counts as the latest time seen") {
    RateLimits limits;
    REQUIRE(allowed_in_a_row(limits, kKey, 1, kT0 + 60'000) == 1);
    const Decision d = limits.check_request(kKey, 1, kT0);  // a shard with a slower clock read
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after_s == 60);
}

TEST_CASE("rpm 0 and tpm 0 are unlimited and create no table entry") {
    RateLimits limits;
    for (int i = 0; i < 10'000; ++i) {
        REQUIRE(limits.check_request(static_cast<std::uint64_t>(i), 0, kT0).allowed);
        REQUIRE(limits.check_tokens(static_cast<std::uint64_t>(i), 0, kT0).allowed);
    }
    CHECK(limits.entry_count() == 0);
    // A limited token check of a key with no usage recorded has nothing to count either.
    CHECK(limits.check_tokens(kKey, 100, kT0).allowed);
    CHECK(limits.entry_count() == 0);
    CHECK(limits.check_request(kKey, 100, kT0).allowed);
    CHECK(limits.entry_count() == 1);
}

TEST_CASE("TPM refuses once the tokens recorded in the last minute reach tpm") {
    RateLimits limits;
    limits.record_usage(kKey, "k_a", 1, 600, kT0);
    CHECK(limits.check_tokens(kKey, 1000, kT0).allowed);
    limits.record_usage(kKey, "k_a", 1, 399, kT0);
    CHECK(limits.check_tokens(kKey, 1000, kT0).allowed);
    limits.record_usage(kKey, "k_a", 1, 1, kT0);
    const Decision refused = limits.check_tokens(kKey, 1000, kT0);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_s >= 55);
    CHECK(refused.retry_after_s <= 60);
    CHECK(limits.check_tokens(kKey, 1001, kT0).allowed);  // a raised tpm applies at once
}

TEST_CASE("TPM Retry-After is whole seconds until the window drops below tpm") {
    for (std::int64_t offset : {0, 1, 2'500, 4'999}) {
        CAPTURE(offset);
        RateLimits limits;
        const std::int64_t now = kT0 + offset;
        limits.record_usage(kKey, "k_a", 1, 1000, now);
        const Decision refused = limits.check_tokens(kKey, 1000, now);
        REQUIRE_FALSE(refused.allowed);
        const std::int64_t retry_at = now + std::int64_t{refused.retry_after_s} * 1000;
        CHECK_FALSE(limits.check_tokens(kKey, 1000, retry_at - 1000).allowed);
        CHECK(limits.check_tokens(kKey, 1000, retry_at).allowed);
    }
}

TEST_CASE("TPM tokens count for 55 to 60 seconds, the oldest leaving first") {
    RateLimits limits;
    const std::int64_t slot_start = (kT0 / RateLimits::kSlotMs) * RateLimits::kSlotMs;
    limits.record_usage(kKey, "k_a", 1, 500, slot_start + 1'000);
    limits.record_usage(kKey, "k_a", 1, 500, slot_start + 31'000);
    CHECK(limits.window_tokens(kKey, slot_start + 54'999) == 1000);
    CHECK(limits.window_tokens(kKey, slot_start + 59'999) == 1000);
    CHECK(limits.window_tokens(kKey, slot_start + 60'000) == 500);
    CHECK(limits.window_tokens(kKey, slot_start + 90'000) == 0);

    // tpm 800 is reached by both; the older 500 leave at +60 s, which is what it waits for.
    const Decision refused = limits.check_tokens(kKey, 800, slot_start + 31'000);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_s == 29);
    CHECK(limits.check_tokens(kKey, 800, slot_start + 60'000).allowed);
}

TEST_CASE("TPM tokens that left the window stay gone as the slots are reused") {
    RateLimits limits;
    const std::int64_t slot = RateLimits::kSlotMs;
    const std::int64_t start = (kT0 / slot) * slot;
    limits.record_usage(kKey, "k_a", 1, 500, start);
    limits.record_usage(kKey, "k_a", 1, 10, start + 5 * slot);
    limits.record_usage(kKey, "k_a", 1, 1, start + 13 * slot);  // reuses the first slot's place
    CHECK(limits.window_tokens(kKey, start + 13 * slot) == 11);
    limits.record_usage(kKey, "k_a", 1, 2, start + 40 * slot);  // a gap longer than the window
    CHECK(limits.window_tokens(kKey, start + 40 * slot) == 2);
}

TEST_CASE("quota allows while stored plus pending usage is below the quota") {
    CHECK(RateLimits::check_quota(90, 9, 100).allowed);
    CHECK_FALSE(RateLimits::check_quota(90, 10, 100).allowed);
    CHECK_FALSE(RateLimits::check_quota(100, 0, 100).allowed);
    CHECK(RateLimits::check_quota(1'000'000, 5, 0).allowed);  // 0: no quota
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    CHECK_FALSE(RateLimits::check_quota(max, max, max).allowed);  // no wrap-around
    CHECK(RateLimits::check_quota(90, 10, 100).retry_after_s == 0);
}

TEST_CASE("pending usage accumulates per key and take_pending returns it exactly once") {
    RateLimits limits;
    limits.record_usage(1, "k_one", 1, 100, kT0);
    limits.record_usage(1, "k_one", 1, 50, kT0 + 10);
    limits.record_usage(2, "k_two", 1, 7, kT0);
    limits.record_usage(3, "k_three", 1, 0, kT0);  // a response without usage still counts
    CHECK(limits.pending_tokens(1) == 150);
    CHECK(limits.pending_tokens(2) == 7);
    CHECK(limits.pending_tokens(4) == 0);

    std::map<std::uint64_t, PendingUsage> taken;
    for (PendingUsage& p : limits.take_pending()) taken[p.key] = p;
    REQUIRE(taken.size() == 3);
    CHECK(taken[1].key_id == "k_one");
    CHECK(taken[1].requests == 2);
    CHECK(taken[1].tokens == 150);
    CHECK(taken[2].key_id == "k_two");
    CHECK(taken[2].tokens == 7);
    CHECK(taken[3].requests == 1);
    CHECK(taken[3].tokens == 0);

    CHECK(limits.pending_tokens(1) == 0);
    CHECK(limits.take_pending().empty());
    // Taking the pending usage leaves the TPM window alone.
    CHECK(limits.window_tokens(1, kT0 + 10) == 150);
}

TEST_CASE("restore_pending puts a failed flush back for the next take") {
    RateLimits limits;
    limits.record_usage(1, "k_one", 1, 100, kT0);
    std::vector<PendingUsage> failed = limits.take_pending();
    REQUIRE(failed.size() == 1);
    limits.record_usage(1, "k_one", 1, 5, kT0 + 1);
    limits.restore_pending(failed, kT0 + 2);
    CHECK(limits.pending_tokens(1) == 105);
    const std::vector<PendingUsage> again = limits.take_pending();
    REQUIRE(again.size() == 1);
    CHECK(again[0].requests == 2);
    CHECK(again[0].tokens == 105);
    CHECK(again[0].key_id == "k_one");
    CHECK(limits.window_tokens(1, kT0 + 2) == 105);  // the window counted each token once
}

TEST_CASE("many threads hammering one key admit exactly rpm requests") {
    RateLimits limits;
    constexpr std::uint32_t kRpm = 5'000;
    constexpr int kThreads = 8;
    constexpr int kTries = 2'000;
    std::atomic<int> allowed{0};
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            start.arrive_and_wait();
            int mine = 0;
            for (int i = 0; i < kTries; ++i) mine += limits.check_request(kKey, kRpm, kT0).allowed;
            allowed.fetch_add(mine);
        });
    }
    for (std::thread& t : threads) t.join();
    CHECK(allowed.load() == static_cast<int>(kRpm));
}

TEST_CASE("concurrent recording and flushing lose and duplicate no usage") {
    RateLimits limits(4);  // few stripes: keys share locks
    constexpr int kThreads = 6;
    constexpr int kRecords = 20'000;
    constexpr std::uint64_t kKeys = 16;
    std::atomic<bool> done{false};
    std::uint64_t flushed_requests = 0;
    std::uint64_t flushed_tokens = 0;
    std::thread flusher([&] {
        while (!done.load()) {
            for (const PendingUsage& p : limits.take_pending()) {
                flushed_requests += p.requests;
                flushed_tokens += p.tokens;
            }
            std::this_thread::yield();
        }
    });
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            start.arrive_and_wait();
            for (int i = 0; i < kRecords; ++i) {
                const std::uint64_t key = static_cast<std::uint64_t>(i + t) % kKeys;
                limits.record_usage(key, "k_" + std::to_string(key), 1, static_cast<std::uint64_t>(i % 7),
                                    kT0 + i);
                (void)limits.check_tokens(key, 1'000'000, kT0 + i);
            }
        });
    }
    for (std::thread& t : threads) t.join();
    done.store(true);
    flusher.join();
    for (const PendingUsage& p : limits.take_pending()) {
        flushed_requests += p.requests;
        flushed_tokens += p.tokens;
    }
    std::uint64_t expected_tokens = 0;
    for (int i = 0; i < kRecords; ++i) expected_tokens += static_cast<std::uint64_t>(i % 7);
    CHECK(flushed_requests == std::uint64_t{kThreads} * kRecords);
    CHECK(flushed_tokens == expected_tokens * kThreads);
}

TEST_CASE("idle entries are purged after two minutes, by purge_idle or by the stripe's next use") {
    RateLimits limits;
    for (std::uint64_t k = 0; k < 1000; ++k) REQUIRE(limits.check_request(k, 10, kT0).allowed);
    CHECK(limits.entry_count() == 1000);
    CHECK(limits.purge_idle(kT0 + RateLimits::kIdleMs) == 0);  // idle exactly 2 min: kept
    CHECK(limits.entry_count() == 1000);
    CHECK(limits.purge_idle(kT0 + RateLimits::kIdleMs + 1) == 1000);
    CHECK(limits.entry_count() == 0);

    RateLimits one_stripe(1);
    for (std::uint64_t k = 0; k < 100; ++k) REQUIRE(one_stripe.check_request(k, 10, kT0).allowed);
    REQUIRE(one_stripe.entry_count() == 100);
    CHECK(one_stripe.check_request(1000, 10, kT0 + 200'000).allowed);
    CHECK(one_stripe.entry_count() == 1);
}

TEST_CASE("an entry with unflushed usage outlives its idle time until it is taken") {
    RateLimits limits(1);
    for (std::uint64_t k = 0; k < 500; ++k) REQUIRE(limits.check_request(k, 10, kT0).allowed);
    for (std::uint64_t k = 500; k < 600; ++k) limits.record_usage(k, "k_" + std::to_string(k), 1, k, kT0);
    CHECK(limits.purge_idle(kT0 + 600'000) == 500);
    CHECK(limits.entry_count() == 100);
    for (std::uint64_t k = 500; k < 600; ++k) REQUIRE(limits.pending_tokens(k) == k);
    CHECK(limits.take_pending().size() == 100);
    CHECK(limits.purge_idle(kT0 + 600'000) == 100);
    CHECK(limits.entry_count() == 0);
}

TEST_CASE("a purged key starts again with a full bucket") {
    RateLimits limits;
    REQUIRE(allowed_in_a_row(limits, kKey, 3, kT0) == 3);
    REQUIRE(limits.purge_idle(kT0 + 10 * 60'000) == 1);
    CHECK(allowed_in_a_row(limits, kKey, 3, kT0 + 10 * 60'000) == 3);
}

// The table against a plain map: random keys in one stripe, random records, takes and
// purges; every key's pending tokens and the entry count must agree at every step.
TEST_CASE("the table keeps every live entry through growth, purges and shrinking") {
    RateLimits limits(1);
    struct Model {
        std::uint64_t pending = 0;
        std::uint64_t requests = 0;
        std::int64_t last_seen = 0;
    };
    std::map<std::uint64_t, Model> model;
    auto forget_idle = [&](std::int64_t now_ms) {
        std::erase_if(model, [&](const auto& kv) {
            const bool nothing_pending = kv.second.pending == 0 && kv.second.requests == 0;
            return now_ms - kv.second.last_seen > RateLimits::kIdleMs && nothing_pending;
        });
    };
    std::mt19937_64 rng(7);
    std::int64_t now = kT0;
    std::size_t dropped = 0;
    for (int step = 0; step < 20'000; ++step) {
        now += static_cast<std::int64_t>(rng() % 400);
        // Bursts of many keys, then quiet phases of few: the map grows and shrinks.
        const std::uint64_t key = rng() % ((step / 2'000) % 2 == 0 ? 1'000 : 20);
        switch (rng() % 10) {
        case 0:
            if (rng() % 20 == 0) {
                limits.take_pending();
                for (auto& [k, m] : model) m = {0, 0, m.last_seen};
            }
            break;
        case 1:
            dropped += limits.purge_idle(now);
            forget_idle(now);
            REQUIRE(limits.entry_count() == model.size());
            break;
        default: {
            const std::uint64_t tokens = rng() % 50;
            limits.record_usage(key, "k", 1, tokens, now);
            Model& m = model[key];
            m.pending += tokens;
            ++m.requests;
            m.last_seen = now;
            // Recording also sweeps the stripe when due: the model catches up with that
            // at its next purge, which drops the same idle keys.
            break;
        }
        }
        if (step % 97 == 0) {
            dropped += limits.purge_idle(now);
            forget_idle(now);
            REQUIRE(limits.entry_count() == model.size());
            for (const auto& [k, m] : model) REQUIRE(limits.pending_tokens(k) == m.pending);
        }
    }
    CHECK(dropped > 1000);  // the run did exercise erasure
}

TEST_CASE("stripe counts must be powers of two") {
    CHECK_THROWS_AS(RateLimits(0), std::invalid_argument);
    CHECK_THROWS_AS(RateLimits(3), std::invalid_argument);
    CHECK_THROWS_AS(RateLimits(RateLimits::kMaxStripes * 2), std::invalid_argument);
    CHECK(RateLimits(16).stripe_count() == 16);
}

}  // namespace
}  // namespace rr::gateway

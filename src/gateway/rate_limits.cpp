// Per-key rate limits: striped mutexes over small open-addressing maps, as in KeySlots.
// The contract is in include/ringrelay/gateway/rate_limits.hpp. Everything in a Stripe is
// guarded by its mutex except `entries`, written under it and read without it.
#include "ringrelay/gateway/rate_limits.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <mutex>
#include <utility>

namespace rr::gateway {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();
constexpr std::size_t kSlots = RateLimits::kWindowMs / RateLimits::kSlotMs;
static_assert(kSlots * RateLimits::kSlotMs == RateLimits::kWindowMs);

// The RPM bucket counts in units where one request is kWindowMs units, so a bucket of
// capacity rpm refills by exactly rpm units per millisecond: integer arithmetic, no
// rounding drift. rpm < 2^32, so the capacity stays below 2^48.
constexpr std::uint64_t kUnitsPerRequest = RateLimits::kWindowMs;

std::uint64_t add_saturating(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t sum = a + b;
    return sum < a ? std::numeric_limits<std::uint64_t>::max() : sum;
}

// Retry-After: whole seconds, rounded up, at least 1.
std::uint32_t retry_seconds(std::uint64_t wait_ms) noexcept {
    const std::uint64_t seconds = std::max<std::uint64_t>(1, (wait_ms + 999) / 1000);
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(seconds, std::numeric_limits<std::uint32_t>::max()));
}

struct Entry {
    std::uint64_t key = 0;
    bool used = false;                 // false: empty map slot
    std::int64_t last_seen_ms = 0;     // the latest time any call named the key
    std::int64_t bucket_ms = kNever;   // when `bucket` was brought up to date; kNever: full
    std::uint64_t bucket = 0;          // RPM units available
    std::int64_t newest_slot = kNever; // TPM: the slot number slots[newest_slot % kSlots] holds
    std::array<std::uint64_t, kSlots> slots{};
    std::uint64_t pending_requests = 0;
    std::uint64_t pending_tokens = 0;
    std::string key_id;

    bool in_use() const noexcept { return used; }
    bool has_pending() const noexcept { return pending_requests != 0 || pending_tokens != 0; }
    bool idle_at(std::int64_t now_ms) const noexcept {
        return now_ms - last_seen_ms > RateLimits::kIdleMs && !has_pending();
    }
};

// --- RPM: the token bucket ---

void refill(Entry& e, std::uint32_t rpm, std::int64_t now_ms) noexcept {
    const std::uint64_t capacity = std::uint64_t{rpm} * kUnitsPerRequest;
    if (e.bucket_ms == kNever || now_ms - e.bucket_ms >= RateLimits::kWindowMs) {
        e.bucket = capacity;  // empty to full takes exactly one window
    } else {
        const auto elapsed = static_cast<std::uint64_t>(now_ms - e.bucket_ms);
        e.bucket = std::min(capacity, e.bucket + elapsed * rpm);  // also clamps a lowered rpm
    }
    e.bucket_ms = now_ms;
}

RateLimits::Decision take_request(Entry& e, std::uint32_t rpm, std::int64_t now_ms) noexcept {
    refill(e, rpm, now_ms);
    if (e.bucket >= kUnitsPerRequest) {
        e.bucket -= kUnitsPerRequest;
        return {true, 0};
    }
    const std::uint64_t deficit = kUnitsPerRequest - e.bucket;
    return {false, retry_seconds((deficit + rpm - 1) / rpm)};
}

// --- TPM: twelve 5-second slots ---

std::int64_t slot_of(std::int64_t now_ms) noexcept { return now_ms / RateLimits::kSlotMs; }

std::uint64_t& slot_at(Entry& e, std::int64_t slot) noexcept {
    return e.slots[static_cast<std::size_t>(slot) % kSlots];
}
std::uint64_t slot_at(const Entry& e, std::int64_t slot) noexcept {
    return e.slots[static_cast<std::size_t>(slot) % kSlots];
}

// Moves the window forward to `slot` (never back: callers pass times >= the key's
// last_seen_ms), zeroing the slots it reuses.
void advance_window(Entry& e, std::int64_t slot) noexcept {
    if (e.newest_slot == kNever || slot - e.newest_slot >= static_cast<std::int64_t>(kSlots)) {
        e.slots.fill(0);
    } else {
        for (std::int64_t n = e.newest_slot + 1; n <= slot; ++n) slot_at(e, n) = 0;
    }
    e.newest_slot = std::max(e.newest_slot, slot);
}

void add_tokens(Entry& e, std::uint64_t tokens, std::int64_t now_ms) noexcept {
    if (tokens == 0) return;
    const std::int64_t slot = slot_of(now_ms);
    advance_window(e, slot);
    slot_at(e, slot) = add_saturating(slot_at(e, slot), tokens);
}

// Tokens in the slots from `first` up to the newest one held.
std::uint64_t tokens_since(const Entry& e, std::int64_t first) noexcept {
    if (e.newest_slot == kNever) return 0;
    first = std::max(first, e.newest_slot - static_cast<std::int64_t>(kSlots) + 1);
    std::uint64_t sum = 0;
    for (std::int64_t n = first; n <= e.newest_slot; ++n) sum = add_saturating(sum, slot_at(e, n));
    return sum;
}

std::int64_t window_start(std::int64_t now_ms) noexcept {
    return slot_of(now_ms) - static_cast<std::int64_t>(kSlots) + 1;
}

// The window sum is >= tpm: wait for the oldest slots to leave it one by one (slot
// `first` leaves when slot `first + kSlots` begins) until the rest is below tpm. The
// loop ends by the last step at the latest: tpm > 0 and nothing is left then.
RateLimits::Decision refuse_tokens(const Entry& e, std::uint64_t tpm, std::int64_t now_ms) noexcept {
    std::int64_t first = window_start(now_ms);
    std::uint64_t sum = tokens_since(e, first);
    while (sum >= tpm) {
        if (first >= e.newest_slot - static_cast<std::int64_t>(kSlots) + 1 && first <= e.newest_slot) {
            sum -= slot_at(e, first);
        }
        ++first;
    }
    const std::int64_t leaves_at_ms = (first - 1 + static_cast<std::int64_t>(kSlots)) * RateLimits::kSlotMs;
    return {false, retry_seconds(static_cast<std::uint64_t>(leaves_at_ms - now_ms))};
}

}  // namespace

struct alignas(64) RateLimits::Stripe {
    std::mutex mu;
    ProbingMap<Entry> map;
    std::int64_t next_sweep_ms = 0;
    std::atomic<std::size_t> entries{0};

    // The key's entry, created if absent, with its clock moved to now_ms. Returns the
    // key's time to use: never earlier than one it has already seen.
    Entry& touch(std::uint64_t key, std::int64_t& now_ms) {
        Entry* e = map.find(key);
        if (e == nullptr) {
            e = &map.insert(key, [](Entry& fresh) { fresh.used = true; });
            entries.fetch_add(1, relaxed);
        }
        e->last_seen_ms = std::max(e->last_seen_ms, now_ms);
        now_ms = e->last_seen_ms;
        return *e;
    }

    std::size_t sweep(std::int64_t now_ms) {
        const std::size_t dropped = map.erase_if([&](const Entry& e) { return e.idle_at(now_ms); });
        entries.fetch_sub(dropped, relaxed);
        next_sweep_ms = now_ms + kSweepEveryMs;
        return dropped;
    }

    void sweep_if_due(std::int64_t now_ms) {
        if (now_ms >= next_sweep_ms) sweep(now_ms);
    }
};

RateLimits::RateLimits(std::size_t stripes) : stripes_(stripes, "rate limit") {}

RateLimits::~RateLimits() = default;

RateLimits::Decision RateLimits::check_request(std::uint64_t key, std::uint32_t rpm,
                                               std::int64_t now_ms) noexcept {
    if (rpm == 0) return {};
    now_ms = std::max<std::int64_t>(now_ms, 0);
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    s.sweep_if_due(now_ms);
    Entry& e = s.touch(key, now_ms);
    return take_request(e, rpm, now_ms);
}

RateLimits::Decision RateLimits::check_tokens(std::uint64_t key, std::uint64_t tpm,
                                              std::int64_t now_ms) noexcept {
    if (tpm == 0) return {};
    now_ms = std::max<std::int64_t>(now_ms, 0);
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    const Entry* e = s.map.find(key);
    if (e == nullptr) return {};
    now_ms = std::max(now_ms, e->last_seen_ms);
    if (tokens_since(*e, window_start(now_ms)) < tpm) return {};
    return refuse_tokens(*e, tpm, now_ms);
}

void RateLimits::record_usage(std::uint64_t key, std::string_view key_id, std::uint64_t requests,
                              std::uint64_t tokens, std::int64_t now_ms) noexcept {
    now_ms = std::max<std::int64_t>(now_ms, 0);
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    s.sweep_if_due(now_ms);
    Entry& e = s.touch(key, now_ms);
    add_tokens(e, tokens, now_ms);
    e.pending_requests = add_saturating(e.pending_requests, requests);
    e.pending_tokens = add_saturating(e.pending_tokens, tokens);
    if (e.key_id != key_id) e.key_id.assign(key_id);
}

RateLimits::Decision RateLimits::check_quota(std::uint64_t used_from_store, std::uint64_t pending,
                                             std::uint64_t quota) noexcept {
    if (quota == 0) return {};
    return {add_saturating(used_from_store, pending) < quota, 0};
}

std::uint64_t RateLimits::pending_tokens(std::uint64_t key) const noexcept {
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    const Entry* e = s.map.find(key);
    return e != nullptr ? e->pending_tokens : 0;
}

std::vector<PendingUsage> RateLimits::take_pending() {
    std::vector<PendingUsage> out;
    for (Stripe& s : stripes_) {
        std::lock_guard lock(s.mu);
        s.map.for_each([&](Entry& e) {
            if (!e.has_pending()) return;
            out.push_back({e.key, e.key_id, e.pending_requests, e.pending_tokens});
            e.pending_requests = 0;
            e.pending_tokens = 0;
        });
    }
    return out;
}

void RateLimits::restore_pending(std::span<const PendingUsage> deltas, std::int64_t now_ms) noexcept {
    now_ms = std::max<std::int64_t>(now_ms, 0);
    for (const PendingUsage& d : deltas) {
        if (d.requests == 0 && d.tokens == 0) continue;
        Stripe& s = stripes_.for_key(d.key);
        std::lock_guard lock(s.mu);
        std::int64_t key_now = now_ms;
        Entry& e = s.touch(d.key, key_now);
        e.pending_requests = add_saturating(e.pending_requests, d.requests);
        e.pending_tokens = add_saturating(e.pending_tokens, d.tokens);
        if (e.key_id.empty()) e.key_id = d.key_id;
    }
}

std::size_t RateLimits::purge_idle(std::int64_t now_ms) noexcept {
    std::size_t dropped = 0;
    for (Stripe& s : stripes_) {
        std::lock_guard lock(s.mu);
        dropped += s.sweep(now_ms);
    }
    return dropped;
}

std::uint64_t RateLimits::window_tokens(std::uint64_t key, std::int64_t now_ms) const noexcept {
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    const Entry* e = s.map.find(key);
    if (e == nullptr) return 0;
    return tokens_since(*e, window_start(std::max(now_ms, e->last_seen_ms)));
}

std::size_t RateLimits::entry_count() const noexcept {
    std::size_t sum = 0;
    for (const Stripe& s : stripes_) sum += s.entries.load(relaxed);
    return sum;
}

}  // namespace rr::gateway

// Per-key rate limits and usage counting (REFERENCE.md section 3: 429 rate_limited with
// Retry-After, 429 quota_exceeded): requests per minute (RPM), tokens per minute (TPM),
// and the in-memory side of the lifetime token quota. Requests for one key arrive on any
// shard, so one RateLimits is shared by all shards, like KeySlots.
//
// Limits come with every call (the store is read on each request, so an operator's
// `key update --rpm/--tpm` takes effect on the next request). A limit of 0 means
// unlimited and costs nothing: no lock, no table entry.
//
// RPM is a token bucket of capacity rpm refilled continuously over 60 s (rpm/60 per
// second, at 1 ms resolution). A key that was idle may send rpm requests at once; after
// that one request every 60/rpm s. Changing rpm keeps the bucket's level (clamped to the
// new capacity). Retry-After is the whole seconds, at least 1, until the bucket holds one
// request again.
//
// TPM. Token counts are known only after a response (its usage), so check_tokens() looks
// back: it refuses while the tokens recorded for the key in the last 60 s reach tpm. The
// window is twelve 5-second slots: a token recorded at t counts until the end of the slot
// that starts 55-60 s after t's slot began, i.e. for 55 to 60 s. Retry-After is the whole
// seconds, at least 1, until enough slots have left the window to bring the sum below tpm.
// A request admitted just under the limit may take the key past it: TPM bounds the rate,
// not each request.
//
// Quota. The store's usage database holds the lifetime totals; this table holds what was
// recorded since the last flush (pending). The store writer thread calls take_pending()
// and adds the deltas with store::add_usage(). Between take_pending() and the commit
// becoming visible to a shard's next snapshot, a key's tokens are in neither place, so a
// quota check may under-count by one flush's worth for that moment; it is already
// approximate by the tokens of responses still in flight, which no one knows yet.
//
// Time. now_ms is any millisecond clock (>= 0) that every caller reads the same way
// (common.hpp's now_unix_ms(), or a monotonic one). Calls with a time earlier than one
// the key has already seen (two shards' clock reads racing to the lock) are treated as
// that later time: time never runs backwards for a key.
//
// Memory bound. A fixed table of stripes (256 by default) chosen by a hash of the key,
// each a mutex and an open-addressing map key -> entry (~200 bytes; the map's load stays
// between 1/8 and 1/2; both in striped_map.hpp). An entry exists while its key is active: it is dropped when no
// call has named the key for more than 2 minutes (kIdleMs) and it has no pending usage
// (an idle entry's bucket is full and its window empty, so dropping it forgets nothing).
// Each stripe drops its idle entries on its first call after kSweepEveryMs; purge_idle()
// sweeps every stripe (the writer thread calls it after each flush). So the table holds
// at most the keys named in the last kIdleMs + kSweepEveryMs plus the keys with unflushed
// usage, and about 2 x 200 bytes each.
//
// Threads. Every call is thread-safe. A call locks the key's stripe for a hash lookup and
// a few arithmetic steps (plus, every kSweepEveryMs, a sweep of that one stripe). Growing
// a stripe's map allocates; allocation failure terminates (the calls are noexcept).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringrelay/gateway/striped_map.hpp"

namespace rr::gateway {

// Usage recorded for one key since the last take_pending(), for store::add_usage().
struct PendingUsage {
    std::uint64_t key = 0;
    std::string key_id;  // as given to record_usage() (the store's key id)
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
};

class RateLimits {
public:
    // allowed false: answer 429 rate_limited with `Retry-After: retry_after_s`
    // (quota_exceeded for check_quota(), whose retry_after_s is 0: waiting does not help).
    struct Decision {
        bool allowed = true;
        std::uint32_t retry_after_s = 0;
    };

    static constexpr std::size_t kDefaultStripes = 256;
    static constexpr std::size_t kMaxStripes = kMaxKeyStripes;
    static constexpr std::int64_t kWindowMs = 60'000;      // RPM refill time, TPM window
    static constexpr std::int64_t kSlotMs = 5'000;         // TPM window resolution
    static constexpr std::int64_t kIdleMs = 120'000;       // an entry idle longer is dropped
    static constexpr std::int64_t kSweepEveryMs = 10'000;  // per-stripe opportunistic sweep

    // stripes: a power of two in [1, kMaxStripes]; else std::invalid_argument.
    explicit RateLimits(std::size_t stripes = kDefaultStripes);
    ~RateLimits();
    RateLimits(const RateLimits&) = delete;
    RateLimits& operator=(const RateLimits&) = delete;

    // One request of `key` under `rpm` requests per minute. When allowed, the request is
    // counted (it took one from the bucket); a refused one is not. rpm 0: always allowed,
    // free.
    Decision check_request(std::uint64_t key, std::uint32_t rpm, std::int64_t now_ms) noexcept;

    // Whether `key` may start a request under `tpm` tokens per minute: refused while the
    // tokens recorded in the window reach tpm. Counts nothing and creates no entry.
    // tpm 0: always allowed, free.
    Decision check_tokens(std::uint64_t key, std::uint64_t tpm, std::int64_t now_ms) noexcept;

    // A finished request's usage: adds `tokens` to the key's TPM window, and `requests`
    // and `tokens` to its pending usage, filed under `key_id` (the store's id of the key;
    // the latest one given is kept). Call it once per relayed request, with requests 1
    // and the tokens its usage reported (0 when the body carried none).
    void record_usage(std::uint64_t key, std::string_view key_id, std::uint64_t requests,
                      std::uint64_t tokens, std::int64_t now_ms) noexcept;

    // The lifetime quota: allowed while used_from_store + pending < quota (saturating).
    // quota 0: always allowed. retry_after_s is always 0.
    static Decision check_quota(std::uint64_t used_from_store, std::uint64_t pending,
                                std::uint64_t quota) noexcept;

    // Tokens recorded for `key` and not yet taken by take_pending() (0 if none).
    std::uint64_t pending_tokens(std::uint64_t key) const noexcept;

    // Every key's pending usage (keys with nothing pending left out), zeroed as it is
    // taken, so each recorded request and token is returned by exactly one call. Locks
    // the stripes one after another; allocates; unordered. For the store writer thread.
    std::vector<PendingUsage> take_pending();

    // Puts taken usage back into pending (a flush whose store write failed), to be taken
    // again by the next take_pending(). Does not touch the TPM windows.
    void restore_pending(std::span<const PendingUsage> deltas, std::int64_t now_ms) noexcept;

    // Drops, in every stripe, the entries idle longer than kIdleMs with nothing pending.
    // Returns how many it dropped.
    std::size_t purge_idle(std::int64_t now_ms) noexcept;

    // Tokens in `key`'s TPM window at now_ms (what check_tokens compares with tpm).
    std::uint64_t window_tokens(std::uint64_t key, std::int64_t now_ms) const noexcept;

    // Entries in the table now: one relaxed counter per stripe, read without locks.
    std::size_t entry_count() const noexcept;

    std::size_t stripe_count() const noexcept { return stripes_.size(); }
    // Which stripe holds `key` (diagnostics and tests).
    std::size_t stripe_of(std::uint64_t key) const noexcept { return stripes_.index_of(key); }

private:
    struct Stripe;

    KeyStripes<Stripe> stripes_;
};

}  // namespace rr::gateway

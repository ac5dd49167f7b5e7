// Per-key concurrency (REFERENCE.md section 4, "Per key"): at most max_concurrency requests of
// one API key in flight; with max_wait N up to N more wait, in arrival order, and each
// release hands its slot to the key's oldest waiter. Requests for one key arrive on any
// shard, so one KeySlots is shared by all shards (with the TokenPool, the only shared
// mutable structure of the request path).
//
// Shape (striped_map.hpp): a fixed table of stripes (256 by default, a power of two)
// chosen by a hash of the key id. Each stripe is a mutex and a small open-addressing map
// key -> {in_flight, limit, epoch, FIFO list of waiters}. An entry exists only while its
// key has a request in flight or waiting, so memory follows the active keys, not all
// keys. The lock is held for a hash lookup and a few field updates; on_grant callbacks
// always run after it is dropped.
//
// Limits come with every acquire() (the store is read on each request, so an operator's
// `key update` takes effect on the next request): the latest max_concurrency is what
// later releases grant against. Lowering it never revokes a slot; raising it grants
// waiters at once. max_concurrency 0 means no limit (in-flight still counted).
//
// Waiting works as in TokenPool (see token_pool.hpp for GrantFn / CancelResult and the
// shard's side): acquire() returns queued, on_grant(ctx) runs once on the granting
// thread (a releaser on any shard) after the stripe lock is dropped, unless cancel()
// returns cancelled first. When cancel() returns lost_race, on_grant has already run and
// returned (cancel waits for it), and the lease is in the waiter. After cancel() returns
// the table never touches the KeyWaiter again. Unlike TokenWaiter, a KeyWaiter is linked
// into the stripe while it waits, so it must stay at one address until on_grant has run
// or cancel() has returned.
//
// Force release (POST /admin/keys/{id}/release): release_all() zeroes the key's count
// and starts a new epoch. Every lease carries the epoch it was granted in, and a release
// whose epoch is not the key's current one is ignored: a request that was still running
// when an operator freed its slot cannot drive the count below what is really in flight.
// Epochs come from a per-stripe counter that never repeats, so a key whose entry was
// dropped and recreated cannot meet an old lease's epoch again.
//
// Ownership and errors: KeySlots (owned by GatewayShared, alive for the server's run)
// owns its stripes and entries and borrows every queued KeyWaiter; ctx is never
// dereferenced. Outcomes are results (KeyAcquireResult, CancelResult), never
// exceptions; the constructor throws std::invalid_argument for a bad stripe count,
// and allocation failure inside the noexcept calls terminates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "ringrelay/gateway/striped_map.hpp"
#include "ringrelay/gateway/token_pool.hpp"  // GrantFn, CancelResult

namespace rr::gateway {

// One granted key slot. epoch 0 never names a grant.
struct KeyLease {
    std::uint64_t key = 0;
    std::uint64_t epoch = 0;
};

enum class KeySlotStatus : std::uint8_t {
    granted,  // lease is valid; on_grant is not called
    queued,   // on_grant(ctx) will run once, unless cancel() returns cancelled first
    busy,     // at max_concurrency with max_wait 0, or max_wait already waiting: 429 key_in_use
};

struct KeyAcquireResult {
    KeySlotStatus status;
    KeyLease lease;  // set when status == granted
};

// The shard's side of a wait for a key slot. Not copyable or movable: the stripe links it
// into the key's FIFO list while it waits. May be reused for a new acquire() once the
// previous one is over (granted, busy, on_grant run, or cancel() returned).
class KeyWaiter {
public:
    KeyWaiter(GrantFn on_grant, void* ctx) noexcept : on_grant_(on_grant), ctx_(ctx) {}
    KeyWaiter(const KeyWaiter&) = delete;
    KeyWaiter& operator=(const KeyWaiter&) = delete;

    // The slot a grant delivered: read it after on_grant has run (the wake-up carries the
    // ordering) or after cancel() returned lost_race.
    const KeyLease& lease() const noexcept { return lease_; }

private:
    friend class KeySlots;
    enum class State : std::uint8_t { idle, waiting, granted, cancelled };

    GrantFn on_grant_;
    void* ctx_;
    // Guarded by the key's stripe lock while the waiter is queued.
    KeyWaiter* prev_ = nullptr;
    KeyWaiter* next_ = nullptr;
    std::uint64_t key_ = 0;
    std::uint64_t id_ = 0;  // per stripe, never reused: names the wait in `notifying`
    KeyLease lease_{};
    State state_ = State::idle;
};

// One line of /admin/state.
struct KeyInFlight {
    std::uint64_t key;
    std::uint32_t in_flight;
    std::uint32_t waiting;
    std::uint32_t max_concurrency;  // the latest limit seen (0: none)
};

class KeySlots {
public:
    static constexpr std::size_t kDefaultStripes = 256;
    static constexpr std::size_t kMaxStripes = kMaxKeyStripes;

    // stripes: a power of two in [1, kMaxStripes]; else std::invalid_argument.
    explicit KeySlots(std::size_t stripes = kDefaultStripes);
    ~KeySlots();
    KeySlots(const KeySlots&) = delete;
    KeySlots& operator=(const KeySlots&) = delete;

    // Takes a slot of `key`, or queues `waiter` (keep it until on_grant or cancel()), or
    // answers busy. Older waiters always go first: a newcomer queues behind them even if
    // a raised limit left room. Allocation failure (growing a stripe's map) terminates.
    KeyAcquireResult acquire(std::uint64_t key, std::uint32_t max_concurrency,
                             std::uint32_t max_wait, KeyWaiter& waiter) noexcept;

    // Takes a queued waiter out. cancelled: nothing held. lost_race: waiter.lease() holds a
    // slot to release. May wait (yield) while another thread runs this waiter's on_grant.
    // On a waiter that is not queued (never was, or already cancelled) it returns
    // cancelled; after a grant it returns lost_race again, so call it at most once.
    CancelResult cancel(KeyWaiter& waiter) noexcept;

    // Gives a slot back; the key's oldest waiter gets it (its on_grant runs on this thread
    // after the lock is dropped). A lease from before a release_all() of its key is
    // ignored. Release each lease once (KeySlotGuard does): a second release of a current
    // lease would free another request's slot.
    void release(const KeyLease& lease) noexcept;

    // Force release: the key's in-flight count becomes 0, the epoch changes (outstanding
    // leases become no-ops), and waiters are granted up to the latest limit. Returns how
    // many slots it freed (the in-flight count it found).
    std::uint32_t release_all(std::uint64_t key) noexcept;

    // Momentary stats. The per-key reads lock one stripe; the totals read one relaxed
    // counter per stripe, without locks.
    std::uint32_t in_flight(std::uint64_t key) const noexcept;
    std::uint32_t waiting(std::uint64_t key) const noexcept;
    std::uint64_t total_in_flight() const noexcept;
    std::uint64_t total_waiting() const noexcept;

    // Every key with a request in flight or waiting, for /admin/state. Locks the stripes
    // one after another (not one consistent instant); allocates; unordered.
    std::vector<KeyInFlight> snapshot() const;

    std::size_t stripe_count() const noexcept { return stripes_.size(); }
    // Which stripe guards `key` (diagnostics and tests).
    std::size_t stripe_of(std::uint64_t key) const noexcept { return stripes_.index_of(key); }

private:
    struct Stripe;
    class GrantBatch;

    void deliver(Stripe& stripe, GrantBatch& batch) noexcept;

    KeyStripes<Stripe> stripes_;
};

// Owns one key slot and releases it when destroyed or reset. Move-only. Build it from a
// granted lease: acquire() == granted (result.lease), or waiter.lease() after on_grant
// or after cancel() == lost_race.
class KeySlotGuard {
public:
    KeySlotGuard() noexcept = default;
    KeySlotGuard(KeySlots& slots, const KeyLease& lease) noexcept : slots_(&slots), lease_(lease) {}
    KeySlotGuard(KeySlotGuard&& other) noexcept
        : slots_(std::exchange(other.slots_, nullptr)), lease_(other.lease_) {}
    KeySlotGuard& operator=(KeySlotGuard&& other) noexcept {
        if (this != &other) {
            reset();
            slots_ = std::exchange(other.slots_, nullptr);
            lease_ = other.lease_;
        }
        return *this;
    }
    KeySlotGuard(const KeySlotGuard&) = delete;
    KeySlotGuard& operator=(const KeySlotGuard&) = delete;
    ~KeySlotGuard() { reset(); }

    // Releases the slot now (no-op if none is held).
    void reset() noexcept {
        if (KeySlots* s = std::exchange(slots_, nullptr)) s->release(lease_);
    }
    bool holds() const noexcept { return slots_ != nullptr; }
    const KeyLease& lease() const noexcept { return lease_; }

private:
    KeySlots* slots_ = nullptr;
    KeyLease lease_{};
};

}  // namespace rr::gateway

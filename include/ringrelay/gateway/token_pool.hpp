// The global upstream token pool (REFERENCE.md section 4, "Global"): at most `capacity`
// requests talk to upstreams at once (--upstream-max-concurrent), up to `max_queue` more
// wait for a token first come first served (--upstream-max-queue), and a release hands
// its token straight to the oldest live waiter, on whatever shard it waits. One pool is
// shared by all shards; every call is lock-free except the two short waits named below.
//
// How a shard uses it (the request runs as a coroutine on the shard thread):
//
//     TokenWaiter w{&wake_shard, handle};        // handle: opaque, see "ctx" below
//     switch (pool.acquire(w)) {
//     case TokenStatus::granted:    TokenGuard token{pool}; ...            // holds a token
//     case TokenStatus::queue_full: answer 429 upstream_queue_full
//     case TokenStatus::queued:     suspend until wake_shard(handle) arrives or a timer fires;
//         on the wake-up:  TokenGuard token{pool}; ...                     // granted
//         on the timeout / client gone:
//             if (pool.cancel(w) == CancelResult::cancelled) -> 429 queue_timeout (nothing held)
//             else -> TokenGuard token{pool}: the grant won the race, the token is ours
//     }
//
// on_grant(ctx) is called exactly once for a waiter whose acquire() returned `queued`,
// unless cancel() returns `cancelled`. It runs on the thread that found the token (a
// releaser on another shard, or an acquirer passing on a token it found free) and may
// even run before acquire() returns. It must not block and must not call into this pool:
// post a wake-up to the waiter's event loop (MSG_RING, eventfd) and return. That post
// must give the usual release/acquire ordering (every thread-safe queue does).
//
// ctx is opaque to the pool: it is stored in the pool's own ring and handed back
// unchanged, never dereferenced. When cancel() returns lost_race, on_grant(ctx) has
// already been called and has returned, so the wake-up it posted is still on its way
// to the shard: make it harmless (ctx as a generation-checked handle into the shard's
// request table, or a flag the shard checks before resuming). After cancel() returns,
// either way, the pool never calls on_grant for that waiter again and never touches the
// TokenWaiter, which the shard may free at once.
//
// ---------------------------------------------------------------------------------------
// How it works (the parts that are easy to get wrong)
//
// Tokens. `free_` is an atomic count of free tokens. try_take is a CAS loop that never
// takes it below zero. set_capacity() may drive it negative: that is a debt the next
// releases pay by retiring their token instead of passing it on.
//
// Waiters. A waiter gets a ticket t from `tail_` (a 64-bit counter that never wraps in
// practice) and lives in cell t mod R of a ring the pool owns (R: power of two >=
// 2*max_queue, at least 16). FIFO order is ticket order. Each cell has one atomic word
// `next << 2 | state`: state is free, busy (a waiter waits here) or granting (a releaser
// is inside that waiter's on_grant); `next` is the only ticket allowed to occupy the cell
// next. Beside it the cell holds the occupant's ticket, on_grant and ctx, written before
// the word is published and read only under the protection of a CAS on the word.
//
// Memory safety. The ring never points at the shard's waiter: the canceller and the
// granter both CAS the cell word, whose `next` only grows, so a stale reader's CAS fails
// (no ABA), and the occupant ticket tells a late canceller that its cell has moved on.
// A granter CASes busy -> granting, calls on_grant, then sets the cell free; a canceller
// that meets granting waits (yield) for that one non-blocking callback to return, which
// is what lets cancel() promise that on_grant is over when it returns.
//
// Zombies. A cancelled waiter frees its cell at once (busy -> free, `next` unchanged);
// it does not wait for the head to reach it. Its ticket is then simply gone: the head
// steps over any ticket whose cell has moved on (next > ticket, or occupied by a later
// ticket). `live_` counts waiters (reserved before enqueue, dropped at grant or cancel)
// and alone decides queue_full, so cancelled waiters never fill the queue. What is left:
// a new ticket y may land on a cell still occupied by the live waiter of ticket y - R
// (a long wait at the head while R later waiters came and went). The enqueuer then skips
// y: it moves that cell's `next` to y + R (so the head will step over y too) and takes
// the next ticket. Since at most max_queue waiters live and R >= 2*max_queue, at least
// half of any R consecutive cells are free, so skips are few. Nothing here waits for the
// head, so grants are never stalled by zombies; the head walks over each dead ticket once.
//
// The two short waits: cancel() meeting a granter inside on_grant (above), and an
// enqueuer whose ticket lands on a cell whose previous filler was preempted between
// claiming its ticket and publishing it, while R more tickets went by (a few stores'
// window). Both yield until the other thread finishes; neither depends on a release.
//
// Lost wake-ups. The danger is an acquirer that saw no free token and enqueues while a
// releaser, having found no waiter, returns its token to `free_`: the waiter would wait
// while a token is free. Protocol (all these operations are sequentially consistent):
//   - an enqueuer, after publishing its cell, runs drain();
//   - a releaser that finds no waiter to hand to increments free_, then runs drain();
//   - drain(): while the queue (head..tail) is not empty and a token can be taken, take
//     one and hand it to the oldest waiter; if none could be handed (empty, or the head
//     ticket is still being filled), put the token back (free_ + 1) and re-read the
//     head: go on unless the queue is empty or its head is still being filled.
// Claim: when no operation is in progress, no published waiter W waits while free_ > 0.
// Proof. Suppose W waits and free_ > 0 at rest. Let I be the last increment of free_
// (the initial capacity counts as one; a release paying debt leaves free_ <= 0, so it
// is not I). Only decrements follow I and the final value is positive, so free_ stays
// positive after I: every take after I succeeds, and a drain() step after I cannot fail
// to hand a token, since putting it back would be a later increment. So a drain() whose
// steps run after I keeps handing tokens to the head until it sees an empty queue, and
// while W waits the queue is not empty: such a drain grants W. (1) W's publish precedes
// I, else W's own drain() runs after I and grants W. (2) The thread that made I:
//   - a releaser or set_capacity() then runs drain() after I, sees W (published before
//     I) and grants it: contradiction;
//   - a drain() that put a token back then re-reads the head after I. If it goes on, it
//     grants W as above. It cannot stop on "empty" while W is in. If it stops because
//     the head ticket h is still being filled, h's publish comes after that re-read, so
//     h's own drain() runs after I and grants W: contradiction.
// So no such W exists. The model tests check this at rest, many times over.
//
// FIFO. Handing always goes to the waiter at the head. acquire() takes a free token
// directly only when nobody is waiting (`live_` == 0), so an acquire that starts after
// another one returned `queued` is served after it (unless that one cancels).
//
// Cost: uncontended acquire + release is a load of `live_` and two RMWs on `free_`, about
// 20-35 ns; a queued acquire plus its hand-off also touches `tail_`, one cell and `head_`,
// about 45-85 ns on one thread (wake-up not included).
//
// Errors: outcomes are results (TokenStatus, CancelResult), never exceptions; only the
// constructor throws (start-up). The pool (owned by GatewayShared) outlives every
// waiter and TokenGuard.
// ---------------------------------------------------------------------------------------
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace rr::gateway {

// Called by whichever thread grants a waiter (see above). Must not block or re-enter.
using GrantFn = void (*)(void* ctx);

// What cancel() found. cancelled: the waiter left before any grant and holds nothing.
// lost_race: a grant reached it first; it holds the token (or key slot) and must release
// it, and its on_grant has already run and returned.
enum class CancelResult : std::uint8_t { cancelled, lost_race };

enum class TokenStatus : std::uint8_t {
    granted,     // the caller holds a token now; on_grant is not called
    queued,      // on_grant(ctx) will run once, unless cancel() returns cancelled first
    queue_full,  // max_queue waiters already wait; nothing held, nothing queued
};

// The shard's side of a wait. A plain value: the pool keeps a copy of on_grant/ctx in its
// own ring and never refers to this object after acquire() or cancel() return, so it may
// live in the coroutine frame and be freed right after cancel().
class TokenWaiter {
public:
    TokenWaiter(GrantFn on_grant, void* ctx) noexcept : on_grant_(on_grant), ctx_(ctx) {}

private:
    friend class TokenPool;
    GrantFn on_grant_;
    void* ctx_;
    std::uint64_t ticket_ = 0;  // set by acquire() when it returns queued
};

class TokenPool {
public:
    // Largest accepted max_queue (the ring takes 128 bytes per allowed waiter).
    static constexpr std::uint32_t kMaxQueue = 1u << 20;

    // capacity: tokens (0 is allowed: everything waits until set_capacity raises it).
    // max_queue: waiters allowed at once (0: never wait, a request without a token gets
    // queue_full). Throws std::invalid_argument if max_queue > kMaxQueue, std::bad_alloc.
    TokenPool(std::uint32_t capacity, std::uint32_t max_queue);
    ~TokenPool();
    TokenPool(const TokenPool&) = delete;
    TokenPool& operator=(const TokenPool&) = delete;

    // Takes a token, or queues `waiter`, or refuses. queued also fills the waiter's
    // ticket; keep the waiter until on_grant arrives or cancel() returns.
    TokenStatus acquire(TokenWaiter& waiter) noexcept;

    // Takes a free token when nobody waits; never queues. true: the caller holds one.
    bool try_acquire() noexcept;

    // Takes `waiter` (whose acquire returned queued) out of the queue. Call it at most
    // once per queued acquire, from any thread. May wait (yield) while another thread is
    // inside this waiter's on_grant. See CancelResult for the two outcomes.
    CancelResult cancel(TokenWaiter& waiter) noexcept;

    // Gives back one held token: to the oldest live waiter (calling its on_grant on this
    // thread), else to the pool. Calling it without holding a token corrupts the count.
    void release() noexcept;

    // Changes the number of tokens at run time. Raising it grants waiters at once;
    // lowering it takes tokens back as they are released (in_use() may exceed the new
    // capacity until then; nothing held is revoked).
    void set_capacity(std::uint32_t capacity) noexcept;

    // Stats for /metrics and /admin/state: momentary values, read without a lock.
    std::uint32_t capacity() const noexcept { return capacity_.load(std::memory_order_relaxed); }
    std::uint32_t max_queue() const noexcept { return max_queue_; }
    std::int64_t free_tokens() const noexcept { return free_.load(std::memory_order_relaxed); }
    std::uint32_t in_use() const noexcept;       // capacity - free tokens
    std::uint32_t queue_depth() const noexcept;  // live waiters (cancelled ones excluded)

private:
    struct Cell;
    enum class Handed : std::uint8_t { none, other, self };

    bool try_take() noexcept;
    std::uint64_t enqueue(GrantFn on_grant, void* ctx) noexcept;
    bool drain(std::uint64_t self) noexcept;
    Handed hand_to_oldest(std::uint64_t self) noexcept;
    bool head_empty_or_filling() const noexcept;
    Cell& cell(std::uint64_t ticket) const noexcept;

    alignas(64) std::atomic<std::int64_t> free_;
    alignas(64) std::atomic<std::uint32_t> live_{0};
    alignas(64) std::atomic<std::uint64_t> head_{0};  // oldest ticket that may still wait
    alignas(64) std::atomic<std::uint64_t> tail_{0};  // next ticket to hand out
    alignas(64) std::atomic<std::uint32_t> capacity_;
    const std::uint32_t max_queue_;
    std::uint64_t ring_mask_ = 0;
    std::unique_ptr<Cell[]> cells_;
};

// Owns one token of a pool and releases it when destroyed or reset. Move-only. Build it
// only from a token actually held: after acquire() == granted, try_acquire() == true,
// the on_grant wake-up, or cancel() == lost_race.
class TokenGuard {
public:
    TokenGuard() noexcept = default;
    explicit TokenGuard(TokenPool& pool) noexcept : pool_(&pool) {}
    TokenGuard(TokenGuard&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
    TokenGuard& operator=(TokenGuard&& other) noexcept {
        if (this != &other) {
            reset();
            pool_ = std::exchange(other.pool_, nullptr);
        }
        return *this;
    }
    TokenGuard(const TokenGuard&) = delete;
    TokenGuard& operator=(const TokenGuard&) = delete;
    ~TokenGuard() { reset(); }

    // Releases the token now (no-op if none is held).
    void reset() noexcept {
        if (TokenPool* p = std::exchange(pool_, nullptr)) p->release();
    }
    bool holds() const noexcept { return pool_ != nullptr; }

private:
    TokenPool* pool_ = nullptr;
};

}  // namespace rr::gateway

// The global token pool. The algorithm, its invariants and the lost-wake-up proof are in
// include/ringrelay/gateway/token_pool.hpp; this file follows it step by step. All
// operations on free_, live_, head_, tail_ and the cell words are sequentially
// consistent: the proof needs a single order between "publish a waiter, then look at
// free_" and "put a token back, then look at the queue" (a store-load pair that weaker
// orders allow to pass each other).
#include "ringrelay/gateway/token_pool.hpp"

#include <stdexcept>
#include <thread>

// Points between two steps where another thread could run. The model tests build these
// sources a second time with tests/unit/gateway/chaos.hpp force-included, which makes
// them yield at random; everywhere else they are nothing.
#ifndef RR_CHAOS_POINT
#define RR_CHAOS_POINT() ((void)0)
#endif

namespace rr::gateway {
namespace {

// Cell word: next << 2 | state.
constexpr std::uint64_t kFree = 0;      // empty; ticket `next` may claim it
constexpr std::uint64_t kBusy = 1;      // the occupant waits
constexpr std::uint64_t kGranting = 2;  // a granter is inside the occupant's on_grant

constexpr std::uint64_t make_word(std::uint64_t next, std::uint64_t state) noexcept {
    return next << 2 | state;
}
constexpr std::uint64_t next_of(std::uint64_t word) noexcept { return word >> 2; }
constexpr std::uint64_t state_of(std::uint64_t word) noexcept { return word & 3; }

// A ticket no waiter ever has: "nobody is asking for a self-grant".
constexpr std::uint64_t kNoTicket = UINT64_MAX;
constexpr std::uint64_t kMinRing = 16;

constexpr auto relaxed = std::memory_order_relaxed;

}  // namespace

// 64-byte cells: neighbouring waiters usually belong to different shards.
struct alignas(64) TokenPool::Cell {
    std::atomic<std::uint64_t> word{0};
    // Written by the filler before it publishes the word; stable until the cell is free.
    std::atomic<std::uint64_t> occupant{kNoTicket};
    std::atomic<GrantFn> on_grant{nullptr};
    std::atomic<void*> ctx{nullptr};
};

TokenPool::TokenPool(std::uint32_t capacity, std::uint32_t max_queue)
    : free_(capacity), capacity_(capacity), max_queue_(max_queue) {
    if (max_queue > kMaxQueue) throw std::invalid_argument("upstream max queue too large");
    std::uint64_t ring = kMinRing;
    while (ring < 2 * static_cast<std::uint64_t>(max_queue)) ring <<= 1;
    ring_mask_ = ring - 1;
    cells_ = std::make_unique<Cell[]>(ring);
    for (std::uint64_t i = 0; i < ring; ++i) cells_[i].word.store(make_word(i, kFree), relaxed);
}

TokenPool::~TokenPool() = default;

TokenPool::Cell& TokenPool::cell(std::uint64_t ticket) const noexcept {
    return cells_[ticket & ring_mask_];
}

bool TokenPool::try_take() noexcept {
    std::int64_t f = free_.load();
    while (f > 0) {
        if (free_.compare_exchange_weak(f, f - 1)) return true;
    }
    return false;
}

bool TokenPool::try_acquire() noexcept { return live_.load() == 0 && try_take(); }

TokenStatus TokenPool::acquire(TokenWaiter& waiter) noexcept {
    if (try_acquire()) return TokenStatus::granted;
    RR_CHAOS_POINT();
    if (live_.fetch_add(1) >= max_queue_) {
        live_.fetch_sub(1);
        return TokenStatus::queue_full;
    }
    waiter.ticket_ = enqueue(waiter.on_grant_, waiter.ctx_);
    // A token may have been freed while we enqueued (or we only queued because others
    // waited): drain() passes free tokens to the head, which may be us.
    return drain(waiter.ticket_) ? TokenStatus::granted : TokenStatus::queued;
}

std::uint64_t TokenPool::enqueue(GrantFn on_grant, void* ctx) noexcept {
    const std::uint64_t lap = ring_mask_ + 1;
    for (;;) {
        std::uint64_t y = tail_.load();
        Cell& c = cell(y);
        std::uint64_t w = c.word.load();
        const std::uint64_t next = next_of(w);
        if (next > y) {  // ticket y was skipped: help move the tail past it
            tail_.compare_exchange_strong(y, y + 1);
            continue;
        }
        if (next < y) {  // the filler of ticket `next` has not published yet: let it finish
            std::this_thread::yield();
            continue;
        }
        if (state_of(w) != kFree) {  // still held by ticket y - R (or older): skip y
            c.word.compare_exchange_strong(w, make_word(y + lap, state_of(w)));
            continue;
        }
        if (!tail_.compare_exchange_strong(y, y + 1)) continue;
        RR_CHAOS_POINT();
        // Ticket y is ours and so is the cell: nobody else writes a free(y) cell.
        c.occupant.store(y, relaxed);
        c.on_grant.store(on_grant, relaxed);
        c.ctx.store(ctx, relaxed);
        c.word.store(make_word(y + lap, kBusy));
        RR_CHAOS_POINT();
        return y;
    }
}

bool TokenPool::drain(std::uint64_t self) noexcept {
    bool self_granted = false;
    for (;;) {
        if (head_.load() == tail_.load()) return self_granted;
        if (!try_take()) return self_granted;
        const Handed handed = hand_to_oldest(self);
        if (handed == Handed::self) {
            self_granted = true;
            continue;
        }
        if (handed == Handed::other) continue;
        RR_CHAOS_POINT();
        free_.fetch_add(1);
        RR_CHAOS_POINT();
        if (head_empty_or_filling()) return self_granted;
    }
}

bool TokenPool::head_empty_or_filling() const noexcept {
    const std::uint64_t h = head_.load();
    if (h == tail_.load()) return true;
    const std::uint64_t w = cell(h).word.load();
    return state_of(w) == kFree && next_of(w) == h;
}

TokenPool::Handed TokenPool::hand_to_oldest(std::uint64_t self) noexcept {
    for (;;) {
        std::uint64_t h = head_.load();
        if (h == tail_.load()) return Handed::none;
        Cell& c = cell(h);
        std::uint64_t w = c.word.load();
        RR_CHAOS_POINT();
        const std::uint64_t state = state_of(w);
        if (state == kFree && next_of(w) == h) return Handed::none;  // h is being filled
        // Ticket h is over (granted, cancelled or skipped) unless h itself waits here.
        if (state != kBusy || c.occupant.load(relaxed) != h) {
            head_.compare_exchange_strong(h, h + 1);
            continue;
        }
        if (h == self) {  // our own acquire reached the head: no wake-up needed
            if (!c.word.compare_exchange_strong(w, make_word(next_of(w), kFree))) continue;
            live_.fetch_sub(1);
            head_.compare_exchange_strong(h, h + 1);
            return Handed::self;
        }
        if (!c.word.compare_exchange_strong(w, make_word(next_of(w), kGranting))) continue;
        live_.fetch_sub(1);
        head_.compare_exchange_strong(h, h + 1);
        RR_CHAOS_POINT();
        // The cell is ours until we free it: on_grant and ctx cannot change under us.
        c.on_grant.load(relaxed)(c.ctx.load(relaxed));
        // Skippers may still move `next`; only we leave the granting state.
        w = c.word.load();
        while (!c.word.compare_exchange_weak(w, make_word(next_of(w), kFree))) {
        }
        return Handed::other;
    }
}

CancelResult TokenPool::cancel(TokenWaiter& waiter) noexcept {
    const std::uint64_t t = waiter.ticket_;
    Cell& c = cell(t);
    for (;;) {
        std::uint64_t w = c.word.load();
        const std::uint64_t state = state_of(w);
        // Our cell moved on: a granter took us and finished our on_grant.
        if (state == kFree || c.occupant.load(relaxed) != t) return CancelResult::lost_race;
        if (state == kGranting) {  // our on_grant is running on another thread
            std::this_thread::yield();
            continue;
        }
        RR_CHAOS_POINT();
        if (c.word.compare_exchange_weak(w, make_word(next_of(w), kFree))) {
            live_.fetch_sub(1);
            return CancelResult::cancelled;
        }
    }
}

void TokenPool::release() noexcept {
    std::int64_t f = free_.load();
    while (f < 0) {  // capacity was lowered: this token retires
        if (free_.compare_exchange_weak(f, f + 1)) return;
    }
    if (hand_to_oldest(kNoTicket) == Handed::other) return;
    RR_CHAOS_POINT();
    free_.fetch_add(1);
    drain(kNoTicket);
}

void TokenPool::set_capacity(std::uint32_t capacity) noexcept {
    const std::int64_t old = capacity_.exchange(capacity);
    const std::int64_t delta = static_cast<std::int64_t>(capacity) - old;
    if (delta == 0) return;
    free_.fetch_add(delta);
    if (delta > 0) drain(kNoTicket);
}

std::uint32_t TokenPool::in_use() const noexcept {
    const std::int64_t used = static_cast<std::int64_t>(capacity()) - free_tokens();
    return used > 0 ? static_cast<std::uint32_t>(used) : 0;
}

std::uint32_t TokenPool::queue_depth() const noexcept {
    const std::uint32_t live = live_.load(relaxed);
    return live < max_queue_ ? live : max_queue_;
}

}  // namespace rr::gateway

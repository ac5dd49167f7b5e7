// Per-key slots: striped mutexes over small open-addressing maps. The contract is in
// include/ringrelay/gateway/key_slots.hpp. Everything in a Stripe is guarded by its
// mutex except the two counters, which are written under it and read without it.
#include "ringrelay/gateway/key_slots.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <thread>

// Points between two steps where another thread could run. The model tests build these
// sources a second time with tests/unit/gateway/chaos.hpp force-included, which makes
// them yield at random; everywhere else they are nothing.
#ifndef RR_CHAOS_POINT
#define RR_CHAOS_POINT() ((void)0)
#endif

namespace rr::gateway {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;

struct Entry {
    std::uint64_t key = 0;
    std::uint64_t epoch = 0;  // 0: empty map slot (epochs start at 1)
    std::uint32_t in_flight = 0;
    std::uint32_t limit = 0;  // 0: no limit
    std::uint32_t waiting = 0;
    KeyWaiter* head = nullptr;  // oldest waiter
    KeyWaiter* tail = nullptr;

    bool in_use() const noexcept { return epoch != 0; }
};

bool has_room(const Entry& e) noexcept { return e.limit == 0 || e.in_flight < e.limit; }

}  // namespace

// The on_grant calls a locked section decided on, made after the lock is dropped. Grants
// are usually one at a time; a raised limit or a force release may grant many.
class KeySlots::GrantBatch {
public:
    struct Item {
        GrantFn on_grant;
        void* ctx;
        std::uint64_t waiter_id;
    };

    void add(const Item& item) {
        if (size_ < kInline) {
            inline_[size_] = item;
        } else {
            spill_.push_back(item);
        }
        ++size_;
    }
    std::size_t size() const noexcept { return size_; }
    const Item& operator[](std::size_t i) const noexcept {
        return i < kInline ? inline_[i] : spill_[i - kInline];
    }

private:
    static constexpr std::size_t kInline = 8;
    std::array<Item, kInline> inline_{};
    std::vector<Item> spill_;
    std::size_t size_ = 0;
};

struct alignas(64) KeySlots::Stripe {
    std::mutex mu;
    ProbingMap<Entry> map;
    // Waiters granted whose on_grant has not returned yet: cancel() waits for them.
    std::vector<std::uint64_t> notifying;
    std::uint64_t next_epoch = 1;
    std::uint64_t next_waiter_id = 1;
    std::atomic<std::uint64_t> in_flight{0};
    std::atomic<std::uint64_t> waiting{0};

    Stripe() { notifying.reserve(8); }

    Entry& entry_for(std::uint64_t key) {
        Entry* e = map.find(key);
        return e != nullptr ? *e : map.insert(key, [this](Entry& fresh) { fresh.epoch = next_epoch++; });
    }

    void take_slot(Entry& e, std::uint32_t n = 1) noexcept {
        e.in_flight += n;
        in_flight.fetch_add(n, relaxed);
    }
    void give_slot(Entry& e, std::uint32_t n = 1) noexcept {
        e.in_flight -= n;
        in_flight.fetch_sub(n, relaxed);
    }

    void push_waiter(Entry& e, KeyWaiter& w) noexcept {
        w.key_ = e.key;
        w.id_ = next_waiter_id++;
        w.state_ = KeyWaiter::State::waiting;
        w.prev_ = e.tail;
        w.next_ = nullptr;
        (e.tail != nullptr ? e.tail->next_ : e.head) = &w;
        e.tail = &w;
        ++e.waiting;
        waiting.fetch_add(1, relaxed);
    }

    void unlink_waiter(Entry& e, KeyWaiter& w) noexcept {
        (w.prev_ != nullptr ? w.prev_->next_ : e.head) = w.next_;
        (w.next_ != nullptr ? w.next_->prev_ : e.tail) = w.prev_;
        w.prev_ = w.next_ = nullptr;
        --e.waiting;
        waiting.fetch_sub(1, relaxed);
    }

    // Hands free slots of `e` to its waiters, oldest first. The waiter's memory is not
    // touched after this (we copy on_grant/ctx): until on_grant runs it cannot learn of
    // the grant except through cancel(), which waits for `notifying` to clear.
    void grant_waiters(Entry& e, GrantBatch& batch) {
        while (e.head != nullptr && has_room(e)) {
            KeyWaiter& w = *e.head;
            unlink_waiter(e, w);
            take_slot(e);
            w.lease_ = KeyLease{e.key, e.epoch};
            w.state_ = KeyWaiter::State::granted;
            notifying.push_back(w.id_);
            batch.add({w.on_grant_, w.ctx_, w.id_});
        }
    }

    void drop_if_idle(Entry& e) {
        if (e.in_flight == 0 && e.head == nullptr) map.erase(e);
    }

    bool is_notifying(std::uint64_t id) const noexcept {
        return std::find(notifying.begin(), notifying.end(), id) != notifying.end();
    }

    void end_notifying(std::uint64_t id) noexcept {
        auto it = std::find(notifying.begin(), notifying.end(), id);
        *it = notifying.back();
        notifying.pop_back();
    }
};

KeySlots::KeySlots(std::size_t stripes) : stripes_(stripes, "key slot") {}

KeySlots::~KeySlots() = default;

void KeySlots::deliver(Stripe& stripe, GrantBatch& batch) noexcept {
    if (batch.size() == 0) return;
    RR_CHAOS_POINT();
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].on_grant(batch[i].ctx);
    RR_CHAOS_POINT();
    std::lock_guard lock(stripe.mu);
    for (std::size_t i = 0; i < batch.size(); ++i) stripe.end_notifying(batch[i].waiter_id);
}

KeyAcquireResult KeySlots::acquire(std::uint64_t key, std::uint32_t max_concurrency,
                                   std::uint32_t max_wait, KeyWaiter& waiter) noexcept {
    Stripe& s = stripes_.for_key(key);
    GrantBatch batch;
    KeyAcquireResult result{KeySlotStatus::busy, {}};
    {
        std::lock_guard lock(s.mu);
        waiter.state_ = KeyWaiter::State::idle;
        Entry& e = s.entry_for(key);
        e.limit = max_concurrency;
        s.grant_waiters(e, batch);  // a raised limit serves the older waiters first
        if (e.head == nullptr && has_room(e)) {
            s.take_slot(e);
            result = {KeySlotStatus::granted, {key, e.epoch}};
        } else if (e.waiting < max_wait) {
            s.push_waiter(e, waiter);
            result.status = KeySlotStatus::queued;
        }
        // busy leaves the entry non-idle: it only happens with a slot taken or a waiter.
    }
    deliver(s, batch);
    return result;
}

CancelResult KeySlots::cancel(KeyWaiter& waiter) noexcept {
    Stripe& s = stripes_.for_key(waiter.key_);
    RR_CHAOS_POINT();
    for (;;) {
        {
            std::lock_guard lock(s.mu);
            switch (waiter.state_) {
            case KeyWaiter::State::waiting: {
                Entry& e = *s.map.find(waiter.key_);  // present while it has a waiter
                s.unlink_waiter(e, waiter);
                waiter.state_ = KeyWaiter::State::cancelled;
                s.drop_if_idle(e);
                return CancelResult::cancelled;
            }
            case KeyWaiter::State::granted:
                if (!s.is_notifying(waiter.id_)) return CancelResult::lost_race;
                break;  // its on_grant runs right now on another thread
            case KeyWaiter::State::idle:
            case KeyWaiter::State::cancelled:
                return CancelResult::cancelled;
            }
        }
        std::this_thread::yield();
    }
}

void KeySlots::release(const KeyLease& lease) noexcept {
    Stripe& s = stripes_.for_key(lease.key);
    GrantBatch batch;
    {
        std::lock_guard lock(s.mu);
        Entry* e = s.map.find(lease.key);
        if (e == nullptr || e->epoch != lease.epoch || e->in_flight == 0) return;  // stale
        s.give_slot(*e);
        s.grant_waiters(*e, batch);
        s.drop_if_idle(*e);
    }
    deliver(s, batch);
}

std::uint32_t KeySlots::release_all(std::uint64_t key) noexcept {
    Stripe& s = stripes_.for_key(key);
    GrantBatch batch;
    std::uint32_t freed = 0;
    {
        std::lock_guard lock(s.mu);
        Entry* e = s.map.find(key);
        if (e == nullptr) return 0;
        freed = e->in_flight;
        s.give_slot(*e, freed);
        e->epoch = s.next_epoch++;
        s.grant_waiters(*e, batch);
        s.drop_if_idle(*e);
    }
    deliver(s, batch);
    return freed;
}

std::uint32_t KeySlots::in_flight(std::uint64_t key) const noexcept {
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    const Entry* e = s.map.find(key);
    return e != nullptr ? e->in_flight : 0;
}

std::uint32_t KeySlots::waiting(std::uint64_t key) const noexcept {
    Stripe& s = stripes_.for_key(key);
    std::lock_guard lock(s.mu);
    const Entry* e = s.map.find(key);
    return e != nullptr ? e->waiting : 0;
}

std::uint64_t KeySlots::total_in_flight() const noexcept {
    std::uint64_t sum = 0;
    for (const Stripe& s : stripes_) sum += s.in_flight.load(relaxed);
    return sum;
}

std::uint64_t KeySlots::total_waiting() const noexcept {
    std::uint64_t sum = 0;
    for (const Stripe& s : stripes_) sum += s.waiting.load(relaxed);
    return sum;
}

std::vector<KeyInFlight> KeySlots::snapshot() const {
    std::vector<KeyInFlight> out;
    for (Stripe& s : stripes_) {
        std::lock_guard lock(s.mu);
        s.map.for_each([&](const Entry& e) {
            out.push_back({e.key, e.in_flight, e.waiting, e.limit});
        });
    }
    return out;
}

}  // namespace rr::gateway

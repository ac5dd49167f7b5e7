// Per-key slots: REFERENCE.md section 4 ("Per key"), the admin force release, and the
// contract in include/ringrelay/gateway/key_slots.hpp.
#include "ringrelay/gateway/key_slots.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "test_support.hpp"

namespace rr::gateway {
namespace {

using namespace std::chrono_literals;
using test::Attempt;
using test::Mailbox;

struct Probe {
    std::vector<int>* order;
    int id;
};
void record_grant(void* ctx) {
    auto* p = static_cast<Probe*>(ctx);
    p->order->push_back(p->id);
}

struct Waiters {
    std::vector<int> order;
    std::vector<std::unique_ptr<Probe>> probes;
    std::vector<std::unique_ptr<KeyWaiter>> waiters;

    KeyWaiter& make(int id) {
        probes.push_back(std::make_unique<Probe>(Probe{&order, id}));
        waiters.push_back(std::make_unique<KeyWaiter>(&record_grant, probes.back().get()));
        return *waiters.back();
    }
};

constexpr std::uint64_t kKey = 42;

TEST_CASE("grants up to max_concurrency; with max_wait 0 the next request is busy") {
    KeySlots slots;
    Waiters w;
    CHECK(slots.acquire(kKey, 2, 0, w.make(1)).status == KeySlotStatus::granted);
    CHECK(slots.acquire(kKey, 2, 0, w.make(2)).status == KeySlotStatus::granted);
    CHECK(slots.acquire(kKey, 2, 0, w.make(3)).status == KeySlotStatus::busy);
    CHECK(slots.in_flight(kKey) == 2);
    CHECK(slots.waiting(kKey) == 0);
    CHECK(slots.in_flight(kKey + 1) == 0);
}

TEST_CASE("with max_wait N, N requests wait and the next one is busy") {
    KeySlots slots;
    Waiters w;
    REQUIRE(slots.acquire(kKey, 1, 2, w.make(0)).status == KeySlotStatus::granted);
    CHECK(slots.acquire(kKey, 1, 2, w.make(1)).status == KeySlotStatus::queued);
    CHECK(slots.acquire(kKey, 1, 2, w.make(2)).status == KeySlotStatus::queued);
    CHECK(slots.acquire(kKey, 1, 2, w.make(3)).status == KeySlotStatus::busy);
    CHECK(slots.waiting(kKey) == 2);
    CHECK(slots.total_waiting() == 2);
    CHECK(w.order.empty());
}

TEST_CASE("a release hands the slot to the key's oldest waiter") {
    KeySlots slots;
    Waiters w;
    const KeyAcquireResult first = slots.acquire(kKey, 1, 8, w.make(0));
    REQUIRE(first.status == KeySlotStatus::granted);
    for (int i = 1; i <= 4; ++i) {
        REQUIRE(slots.acquire(kKey, 1, 8, w.make(i)).status == KeySlotStatus::queued);
    }
    slots.release(first.lease);
    CHECK(w.order == std::vector<int>{1});
    CHECK(slots.in_flight(kKey) == 1);
    CHECK(slots.waiting(kKey) == 3);
    const KeyLease handed = w.waiters[1]->lease();
    CHECK(handed.key == kKey);
    CHECK(handed.epoch == first.lease.epoch);
    for (int i = 1; i <= 4; ++i) slots.release(w.waiters[static_cast<std::size_t>(i)]->lease());
    CHECK(w.order == std::vector<int>{1, 2, 3, 4});
    CHECK(slots.in_flight(kKey) == 0);
    CHECK(slots.total_in_flight() == 0);
}

TEST_CASE("cancel before the grant: the waiter leaves and the next one is served") {
    KeySlots slots;
    Waiters w;
    const KeyAcquireResult first = slots.acquire(kKey, 1, 4, w.make(0));
    KeyWaiter& gives_up = w.make(1);
    REQUIRE(slots.acquire(kKey, 1, 4, gives_up).status == KeySlotStatus::queued);
    REQUIRE(slots.acquire(kKey, 1, 4, w.make(2)).status == KeySlotStatus::queued);
    CHECK(slots.cancel(gives_up) == CancelResult::cancelled);
    CHECK(slots.waiting(kKey) == 1);
    slots.release(first.lease);
    CHECK(w.order == std::vector<int>{2});
    slots.release(w.waiters[2]->lease());
    CHECK(slots.in_flight(kKey) == 0);
    CHECK(slots.snapshot().empty());
}

TEST_CASE("cancel after the grant: lost_race and the waiter holds a valid lease") {
    KeySlots slots;
    Waiters w;
    const KeyAcquireResult first = slots.acquire(kKey, 1, 4, w.make(0));
    KeyWaiter& waiter = w.make(1);
    REQUIRE(slots.acquire(kKey, 1, 4, waiter).status == KeySlotStatus::queued);
    slots.release(first.lease);
    CHECK(slots.cancel(waiter) == CancelResult::lost_race);
    CHECK(w.order == std::vector<int>{1});
    CHECK(slots.in_flight(kKey) == 1);
    slots.release(waiter.lease());
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("cancel of a waiter whose wait never started or already ended holds nothing") {
    KeySlots slots;
    Waiters w;
    KeyWaiter& never = w.make(0);
    CHECK(slots.cancel(never) == CancelResult::cancelled);
    const KeyAcquireResult first = slots.acquire(kKey, 1, 4, w.make(1));
    KeyWaiter& waiter = w.make(2);
    REQUIRE(slots.acquire(kKey, 1, 4, waiter).status == KeySlotStatus::queued);
    REQUIRE(slots.cancel(waiter) == CancelResult::cancelled);
    CHECK(slots.cancel(waiter) == CancelResult::cancelled);
    slots.release(first.lease);
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("a limit raised at run time serves the older waiters before the newcomer") {
    KeySlots slots;
    Waiters w;
    REQUIRE(slots.acquire(kKey, 1, 8, w.make(0)).status == KeySlotStatus::granted);
    REQUIRE(slots.acquire(kKey, 1, 8, w.make(1)).status == KeySlotStatus::queued);
    REQUIRE(slots.acquire(kKey, 1, 8, w.make(2)).status == KeySlotStatus::queued);
    // The operator raised max_concurrency to 3: the next acquire brings the new value.
    CHECK(slots.acquire(kKey, 3, 8, w.make(3)).status == KeySlotStatus::queued);
    CHECK(w.order == std::vector<int>{1, 2});
    CHECK(slots.in_flight(kKey) == 3);
    CHECK(slots.waiting(kKey) == 1);
}

TEST_CASE("a limit lowered at run time applies from the next acquire, revoking nothing") {
    KeySlots slots;
    Waiters w;
    const KeyAcquireResult a = slots.acquire(kKey, 3, 0, w.make(0));
    const KeyAcquireResult b = slots.acquire(kKey, 3, 0, w.make(1));
    const KeyAcquireResult c = slots.acquire(kKey, 3, 0, w.make(2));
    REQUIRE(c.status == KeySlotStatus::granted);
    CHECK(slots.acquire(kKey, 1, 4, w.make(3)).status == KeySlotStatus::queued);
    CHECK(slots.in_flight(kKey) == 3);
    slots.release(a.lease);
    slots.release(b.lease);
    CHECK(w.order.empty());  // still 1 in flight, the new limit
    slots.release(c.lease);
    CHECK(w.order == std::vector<int>{3});
    slots.release(w.waiters[3]->lease());
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("max_concurrency 0 means no limit, still counted") {
    KeySlots slots;
    Waiters w;
    std::vector<KeyLease> leases;
    for (int i = 0; i < 100; ++i) {
        const KeyAcquireResult r = slots.acquire(kKey, 0, 0, w.make(i));
        REQUIRE(r.status == KeySlotStatus::granted);
        leases.push_back(r.lease);
    }
    CHECK(slots.in_flight(kKey) == 100);
    for (const KeyLease& l : leases) slots.release(l);
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("force release frees the slots, serves waiters and ignores the old leases") {
    KeySlots slots;
    Waiters w;
    const KeyAcquireResult a = slots.acquire(kKey, 2, 4, w.make(0));
    const KeyAcquireResult b = slots.acquire(kKey, 2, 4, w.make(1));
    REQUIRE(slots.acquire(kKey, 2, 4, w.make(2)).status == KeySlotStatus::queued);
    REQUIRE(slots.acquire(kKey, 2, 4, w.make(3)).status == KeySlotStatus::queued);
    REQUIRE(slots.acquire(kKey, 2, 4, w.make(4)).status == KeySlotStatus::queued);

    CHECK(slots.release_all(kKey) == 2);
    CHECK(w.order == std::vector<int>{2, 3});  // up to the limit, in order
    CHECK(slots.in_flight(kKey) == 2);
    const KeyLease fresh = w.waiters[2]->lease();
    CHECK(fresh.epoch != a.lease.epoch);

    // The two requests that were running end late: their releases change nothing.
    slots.release(a.lease);
    slots.release(b.lease);
    CHECK(slots.in_flight(kKey) == 2);
    CHECK(w.order == std::vector<int>{2, 3});

    slots.release(fresh);
    CHECK(w.order == std::vector<int>{2, 3, 4});
    slots.release(w.waiters[3]->lease());
    slots.release(w.waiters[4]->lease());
    CHECK(slots.in_flight(kKey) == 0);
    CHECK(slots.release_all(kKey) == 0);
    CHECK(slots.release_all(kKey + 1) == 0);
}

TEST_CASE("an old lease stays stale after its key went idle and came back") {
    KeySlots slots(1);
    Waiters w;
    const KeyAcquireResult old = slots.acquire(kKey, 1, 0, w.make(0));
    REQUIRE(slots.release_all(kKey) == 1);  // entry goes idle and is dropped
    const KeyAcquireResult now = slots.acquire(kKey, 1, 0, w.make(1));
    REQUIRE(now.status == KeySlotStatus::granted);
    slots.release(old.lease);
    CHECK(slots.in_flight(kKey) == 1);
    slots.release(now.lease);
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("keys sharing one stripe keep their own counts, limits and queues") {
    KeySlots slots(1);  // every key in the same stripe
    Waiters w;
    const KeyAcquireResult a1 = slots.acquire(1, 1, 1, w.make(1));
    const KeyAcquireResult b1 = slots.acquire(2, 2, 0, w.make(2));
    const KeyAcquireResult b2 = slots.acquire(2, 2, 0, w.make(3));
    CHECK(a1.status == KeySlotStatus::granted);
    CHECK(b2.status == KeySlotStatus::granted);
    CHECK(slots.acquire(1, 1, 1, w.make(4)).status == KeySlotStatus::queued);
    CHECK(slots.acquire(2, 2, 0, w.make(5)).status == KeySlotStatus::busy);
    CHECK(slots.in_flight(1) == 1);
    CHECK(slots.in_flight(2) == 2);
    slots.release(b1.lease);  // key 2's release must not wake key 1's waiter
    CHECK(w.order.empty());
    slots.release(a1.lease);
    CHECK(w.order == std::vector<int>{4});
    CHECK(slots.total_in_flight() == 2);
    slots.release(b2.lease);
    slots.release(w.waiters[3]->lease());
    CHECK(slots.total_in_flight() == 0);
}

TEST_CASE("idle keys leave no entry; the snapshot lists only active keys") {
    KeySlots slots(4);
    Waiters w;
    KeyWaiter& scratch = w.make(0);
    for (std::uint64_t k = 1; k <= 10000; ++k) {
        const KeyAcquireResult r = slots.acquire(k, 1, 0, scratch);
        REQUIRE(r.status == KeySlotStatus::granted);
        slots.release(r.lease);
    }
    CHECK(slots.snapshot().empty());
    std::vector<KeyLease> held;
    for (std::uint64_t k = 1; k <= 3000; ++k) held.push_back(slots.acquire(k, 2, 0, scratch).lease);
    held.push_back(slots.acquire(7, 2, 0, scratch).lease);
    REQUIRE(slots.acquire(7, 2, 1, w.make(1)).status == KeySlotStatus::queued);
    const std::vector<KeyInFlight> snap = slots.snapshot();
    CHECK(snap.size() == 3000);
    const auto seven =
        std::find_if(snap.begin(), snap.end(), [](const KeyInFlight& k) { return k.key == 7; });
    REQUIRE(seven != snap.end());
    CHECK(seven->in_flight == 2);
    CHECK(seven->waiting == 1);
    CHECK(seven->max_concurrency == 2);
    CHECK(slots.total_in_flight() == 3001);
    for (const KeyLease& l : held) slots.release(l);
    slots.release(w.waiters[1]->lease());
    CHECK(slots.snapshot().empty());
    CHECK(slots.total_in_flight() == 0);
}

struct Reentrant {
    KeySlots* slots;
    std::uint32_t seen = 0;
};
void read_count_in_grant(void* ctx) {
    auto* r = static_cast<Reentrant*>(ctx);
    r->seen = r->slots->in_flight(kKey);  // would deadlock if the stripe were still locked
}

TEST_CASE("on_grant runs after the stripe lock is dropped") {
    KeySlots slots(1);
    Reentrant probe{&slots};
    KeyWaiter waiter(&read_count_in_grant, &probe);
    KeyWaiter first_waiter(&read_count_in_grant, &probe);
    const KeyAcquireResult first = slots.acquire(kKey, 1, 1, first_waiter);
    REQUIRE(slots.acquire(kKey, 1, 1, waiter).status == KeySlotStatus::queued);
    slots.release(first.lease);
    CHECK(probe.seen == 1);
    slots.release(waiter.lease());
}

struct SlowGrant {
    std::atomic<bool> entered{false};
    std::atomic<bool> finished{false};
};
void slow_grant(void* ctx) {
    auto* s = static_cast<SlowGrant*>(ctx);
    s->entered.store(true);
    std::this_thread::sleep_for(50ms);
    s->finished.store(true);
}

TEST_CASE("cancel racing a grant returns only after on_grant has returned") {
    KeySlots slots;
    Waiters w;
    const KeyAcquireResult first = slots.acquire(kKey, 1, 1, w.make(0));
    SlowGrant slow;
    KeyWaiter waiter(&slow_grant, &slow);
    REQUIRE(slots.acquire(kKey, 1, 1, waiter).status == KeySlotStatus::queued);
    std::thread releaser([&] { slots.release(first.lease); });
    while (!slow.entered.load()) std::this_thread::yield();
    CHECK(slots.cancel(waiter) == CancelResult::lost_race);
    CHECK(slow.finished.load());
    releaser.join();
    slots.release(waiter.lease());
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("KeySlotGuard releases on destruction, once, and moves ownership") {
    KeySlots slots;
    Waiters w;
    {
        KeySlotGuard a(slots, slots.acquire(kKey, 2, 0, w.make(0)).lease);
        KeySlotGuard b(std::move(a));
        // The moved-from guard is what this checks.
        CHECK_FALSE(a.holds());  // NOLINT(bugprone-use-after-move)
        CHECK(b.holds());
        CHECK(slots.in_flight(kKey) == 1);
        KeySlotGuard c(slots, slots.acquire(kKey, 2, 0, w.make(1)).lease);
        c = std::move(b);
        CHECK(slots.in_flight(kKey) == 1);
    }
    CHECK(slots.in_flight(kKey) == 0);
}

TEST_CASE("the stripe count must be a power of two") {
    CHECK_THROWS_AS(KeySlots(0), std::invalid_argument);
    CHECK_THROWS_AS(KeySlots(100), std::invalid_argument);
    CHECK(KeySlots(64).stripe_count() == 64);
}

// ---------------------------------------------------------------------------------------
// Model tests: threads acting like shards, checked at rest after every round.

// Keys that all land in stripe_of(keys[0]) of a 256-stripe table, plus others.
std::vector<std::uint64_t> keys_in_one_stripe(const KeySlots& slots, std::size_t n) {
    std::vector<std::uint64_t> keys{1000};
    for (std::uint64_t k = 1001; keys.size() < n; ++k) {
        if (slots.stripe_of(k) == slots.stripe_of(keys[0])) keys.push_back(k);
    }
    return keys;
}

struct KeyCounts {
    std::atomic<long> errors{0};
    std::atomic<long> served{0};
    std::atomic<long> woken{0};
    std::atomic<long> cancelled{0};
    std::atomic<long> lost_race{0};
    std::atomic<long> busy{0};
    std::atomic<long> forced{0};
    std::atomic<long> rounds{0};
    std::atomic<int> held{0};
};

// Who holds a slot of each key, per epoch: within one epoch no more than the limit may
// hold a slot, even while force releases start new epochs.
class Holders {
public:
    bool enter(std::uint64_t key, std::uint64_t epoch, std::uint32_t limit) {
        std::lock_guard lock(mu_);
        return ++count_[key][epoch] <= static_cast<int>(limit);
    }
    void leave(std::uint64_t key, std::uint64_t epoch) {
        std::lock_guard lock(mu_);
        auto& per_key = count_[key];
        if (--per_key[epoch] == 0) per_key.erase(epoch);
    }

private:
    std::mutex mu_;
    std::unordered_map<std::uint64_t, std::unordered_map<std::uint64_t, int>> count_;
};

struct KeyRequest {
    std::uint64_t key;
    std::uint32_t limit;
    std::uint32_t max_wait;
    std::chrono::microseconds wait;
    int hold_us;
    std::uint32_t check_limit;  // what Holders enforces per epoch
};

void run_key_request(KeySlots& slots, Mailbox& box, std::uint64_t id, const KeyRequest& req,
                     Holders& holders, KeyCounts& counts) {
    auto* a = new Attempt;
    a->box = &box;
    a->id = id;
    auto* waiter = new KeyWaiter(&test::on_grant_attempt, a);
    const KeyAcquireResult r = slots.acquire(req.key, req.limit, req.max_wait, *waiter);
    KeyLease lease{};
    switch (r.status) {
    case KeySlotStatus::granted:
        lease = r.lease;
        if (a->grants.load() != 0) counts.errors.fetch_add(1);
        break;
    case KeySlotStatus::busy:
        counts.busy.fetch_add(1);
        if (a->grants.load() != 0) counts.errors.fetch_add(1);
        break;
    case KeySlotStatus::queued:
        if (box.wait_for(id, req.wait)) {
            lease = waiter->lease();
            counts.woken.fetch_add(1);
            if (a->grants.load() != 1) counts.errors.fetch_add(1);
        } else if (slots.cancel(*waiter) == CancelResult::cancelled) {
            counts.cancelled.fetch_add(1);
            if (a->grants.load() != 0) counts.errors.fetch_add(1);
        } else {
            lease = waiter->lease();
            counts.lost_race.fetch_add(1);
            if (a->grants.load() != 1 || !box.take_now(id)) counts.errors.fetch_add(1);
        }
        break;
    }
    delete waiter;  // the table must not touch it any more
    delete a;
    if (lease.epoch == 0) return;
    if (lease.key != req.key) counts.errors.fetch_add(1);
    KeySlotGuard slot(slots, lease);
    counts.held.fetch_add(1);
    counts.served.fetch_add(1);
    if (!holders.enter(lease.key, lease.epoch, req.check_limit)) counts.errors.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(req.hold_us);
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
    holders.leave(lease.key, lease.epoch);
    counts.held.fetch_sub(1);
}

void check_keys_at_rest(const KeySlots& slots, KeyCounts& counts, std::vector<Mailbox>& boxes) {
    bool ok = counts.held.load() == 0 && slots.total_in_flight() == 0 &&
              slots.total_waiting() == 0 && slots.snapshot().empty();
    for (Mailbox& b : boxes) ok = ok && b.size() == 0;
    if (!ok) counts.errors.fetch_add(1);
    counts.rounds.fetch_add(1);
}

struct KeyModel {
    std::vector<std::uint64_t> keys;
    std::vector<std::uint32_t> limits;
    std::vector<std::uint32_t> max_waits;
    bool random_limits = false;  // an operator changing limits all the time
    bool force_release = false;  // an operator force-releasing keys all the time
};

void run_key_model(KeySlots& slots, const KeyModel& model, KeyCounts& counts) {
    constexpr int kThreads = 8;
    std::vector<Mailbox> boxes(kThreads);
    Holders holders;
    const auto deadline = std::chrono::steady_clock::now() + test::model_duration();
    std::atomic<bool> stop{false};
    auto at_rest = [&]() noexcept {
        check_keys_at_rest(slots, counts, boxes);
        if (std::chrono::steady_clock::now() >= deadline) stop.store(true);
    };
    std::barrier round(kThreads, at_rest);
    std::vector<std::thread> workers;
    workers.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937_64 rng(static_cast<std::uint64_t>(t) * 104729 + 3);
            std::uint64_t next_id = 0;
            while (!stop.load()) {
                for (int i = 0; i < 40; ++i) {
                    const std::size_t k = rng() % model.keys.size();
                    KeyRequest req{model.keys[k], model.limits[k], model.max_waits[k], 0us,
                                   static_cast<int>(rng() % 60), model.limits[k]};
                    if (model.random_limits) {
                        req.limit = 1 + static_cast<std::uint32_t>(rng() % 3);
                        req.check_limit = 3;
                    }
                    const auto pick = rng() % 100;
                    if (pick >= 20) req.wait = std::chrono::microseconds(rng() % 300);
                    if (pick >= 90) req.wait = 10s;  // a lost wake-up shows as a cancel here
                    run_key_request(slots, boxes[static_cast<std::size_t>(t)], ++next_id, req,
                                    holders, counts);
                }
                round.arrive_and_wait();
            }
        });
    }
    std::thread op;
    if (model.force_release) {
        op = std::thread([&] {
            std::mt19937_64 rng(7);
            while (!stop.load()) {
                const std::uint64_t key = model.keys[rng() % model.keys.size()];
                counts.forced.fetch_add(slots.release_all(key));
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
            }
        });
    }
    for (auto& w : workers) w.join();
    if (op.joinable()) op.join();
    MESSAGE("key model: rounds " << counts.rounds.load() << ", served " << counts.served.load()
                                 << ", woken " << counts.woken.load() << ", cancelled "
                                 << counts.cancelled.load() << ", lost_race "
                                 << counts.lost_race.load() << ", busy " << counts.busy.load()
                                 << ", force-freed " << counts.forced.load());
}

TEST_CASE("model: keys sharing one stripe never exceed their limits and leak nothing") {
    KeySlots slots;
    KeyModel model;
    model.keys = keys_in_one_stripe(slots, 4);
    model.keys.push_back(1);  // and two keys elsewhere
    model.keys.push_back(2);
    model.limits = {1, 2, 1, 3, 1, 2};
    model.max_waits = {2, 1, 0, 4, 3, 2};
    KeyCounts counts;
    run_key_model(slots, model, counts);
    CHECK(counts.errors.load() == 0);
    CHECK(counts.rounds.load() > 0);
    CHECK(counts.woken.load() > 0);
    CHECK(counts.cancelled.load() > 0);
    CHECK(counts.busy.load() > 0);
    CHECK(slots.total_in_flight() == 0);
    CHECK(slots.snapshot().empty());
}

TEST_CASE("model: force releases and changing limits racing with releases leak nothing") {
    KeySlots slots;
    KeyModel model;
    model.keys = keys_in_one_stripe(slots, 3);
    model.keys.push_back(5);
    model.limits = {1, 2, 1, 2};
    model.max_waits = {3, 2, 2, 4};
    model.random_limits = true;
    model.force_release = true;
    KeyCounts counts;
    run_key_model(slots, model, counts);
    CHECK(counts.errors.load() == 0);
    CHECK(counts.forced.load() > 0);
    CHECK(counts.woken.load() > 0);
    CHECK(slots.total_in_flight() == 0);
    CHECK(slots.total_waiting() == 0);
    CHECK(slots.snapshot().empty());
}

TEST_CASE("model: FIFO per key among waiters that did not cancel") {
    KeySlots slots(1);
    std::atomic<std::uint64_t> clock{0};
    std::atomic<std::uint64_t> grant_clock{0};
    std::atomic<long> errors{0};
    std::atomic<long> cancelled{0};
    constexpr int kThreads = 8;
    std::vector<Mailbox> boxes(kThreads);
    std::vector<std::vector<test::Served>> served(kThreads);
    const auto deadline = std::chrono::steady_clock::now() + test::model_duration();
    std::vector<std::thread> workers;
    workers.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 17);
            Mailbox& box = boxes[static_cast<std::size_t>(t)];
            for (std::uint64_t id = 1; std::chrono::steady_clock::now() < deadline; ++id) {
                auto* a = new Attempt;
                a->box = &box;
                a->id = id;
                a->grant_clock = &grant_clock;
                KeyWaiter waiter(&test::on_grant_attempt, a);
                test::Served s{clock.fetch_add(1) + 1, 0, 0};
                // Limit 1: one holder at a time, so releases never overlap.
                const KeyAcquireResult r = slots.acquire(kKey, 1, 64, waiter);
                s.end = clock.fetch_add(1) + 1;
                KeyLease lease = r.lease;
                if (r.status == KeySlotStatus::granted) s.grant_seq = grant_clock.fetch_add(1) + 1;
                if (r.status == KeySlotStatus::queued) {
                    const auto wait = rng() % 3 == 0 ? std::chrono::microseconds(rng() % 200) : 10s;
                    if (box.wait_for(id, wait)) {
                        lease = waiter.lease();
                    } else if (slots.cancel(waiter) == CancelResult::lost_race) {
                        lease = waiter.lease();
                        if (!box.take_now(id)) errors.fetch_add(1);
                    } else {
                        cancelled.fetch_add(1);
                    }
                    if (lease.epoch != 0) s.grant_seq = a->grant_seq.load();
                }
                if (r.status == KeySlotStatus::busy) errors.fetch_add(1);  // 64 > 8 threads
                delete a;
                if (lease.epoch == 0) continue;
                served[static_cast<std::size_t>(t)].push_back(s);
                std::this_thread::yield();
                slots.release(lease);
            }
        });
    }
    for (auto& w : workers) w.join();
    std::vector<test::Served> all;
    for (auto& v : served) all.insert(all.end(), v.begin(), v.end());
    MESSAGE("key FIFO: served " << all.size() << ", cancelled " << cancelled.load());
    CHECK(errors.load() == 0);
    CHECK(all.size() > 100);
    CHECK(cancelled.load() > 0);
    CHECK(test::fifo_violations(all) == 0);
    CHECK(slots.in_flight(kKey) == 0);
}

}  // namespace
}  // namespace rr::gateway

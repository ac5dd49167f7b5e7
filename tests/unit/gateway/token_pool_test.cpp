// The global token pool: REFERENCE.md section 4 ("Global") and the contract in
// include/ringrelay/gateway/token_pool.hpp.
#include "ringrelay/gateway/token_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace rr::gateway {
namespace {

using namespace std::chrono_literals;
using test::Attempt;
using test::Mailbox;

// Records the order in which single-threaded waiters are granted.
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
    std::vector<std::unique_ptr<TokenWaiter>> waiters;

    TokenWaiter& make(int id) {
        probes.push_back(std::make_unique<Probe>(Probe{&order, id}));
        waiters.push_back(std::make_unique<TokenWaiter>(&record_grant, probes.back().get()));
        return *waiters.back();
    }
};

TEST_CASE("grants tokens up to capacity, then queues") {
    TokenPool pool(2, 4);
    Waiters w;
    CHECK(pool.acquire(w.make(1)) == TokenStatus::granted);
    CHECK(pool.acquire(w.make(2)) == TokenStatus::granted);
    CHECK(pool.in_use() == 2);
    CHECK(pool.free_tokens() == 0);
    CHECK(pool.acquire(w.make(3)) == TokenStatus::queued);
    CHECK(pool.queue_depth() == 1);
    CHECK(w.order.empty());
}

TEST_CASE("refuses with queue_full when max_queue waiters wait") {
    TokenPool pool(1, 2);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    CHECK(pool.acquire(w.make(1)) == TokenStatus::queued);
    CHECK(pool.acquire(w.make(2)) == TokenStatus::queued);
    CHECK(pool.acquire(w.make(3)) == TokenStatus::queue_full);
    CHECK(pool.queue_depth() == 2);
}

TEST_CASE("max_queue 0 never queues") {
    TokenPool pool(1, 0);
    Waiters w;
    CHECK(pool.acquire(w.make(0)) == TokenStatus::granted);
    CHECK(pool.acquire(w.make(1)) == TokenStatus::queue_full);
    pool.release();
    CHECK(pool.acquire(w.make(2)) == TokenStatus::granted);
}

TEST_CASE("a release hands its token to the waiter, not to the pool") {
    TokenPool pool(1, 4);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    REQUIRE(pool.acquire(w.make(1)) == TokenStatus::queued);
    pool.release();
    CHECK(w.order == std::vector<int>{1});
    CHECK(pool.in_use() == 1);
    CHECK(pool.free_tokens() == 0);
    CHECK(pool.queue_depth() == 0);
    // A newcomer cannot take the token that was handed over.
    CHECK(pool.try_acquire() == false);
}

TEST_CASE("a release with nobody waiting returns the token to the pool") {
    TokenPool pool(2, 4);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    pool.release();
    CHECK(pool.in_use() == 0);
    CHECK(pool.free_tokens() == 2);
    CHECK(w.order.empty());
}

TEST_CASE("waiters are granted first come first served") {
    TokenPool pool(1, 8);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    for (int i = 1; i <= 5; ++i) REQUIRE(pool.acquire(w.make(i)) == TokenStatus::queued);
    for (int i = 1; i <= 5; ++i) pool.release();
    CHECK(w.order == std::vector<int>{1, 2, 3, 4, 5});
    pool.release();
    CHECK(pool.in_use() == 0);
}

TEST_CASE("cancel before the grant: the waiter leaves holding nothing and is skipped") {
    TokenPool pool(1, 4);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    TokenWaiter& first = w.make(1);
    REQUIRE(pool.acquire(first) == TokenStatus::queued);
    REQUIRE(pool.acquire(w.make(2)) == TokenStatus::queued);
    CHECK(pool.cancel(first) == CancelResult::cancelled);
    CHECK(pool.queue_depth() == 1);
    pool.release();
    CHECK(w.order == std::vector<int>{2});
    pool.release();
    CHECK(pool.in_use() == 0);
    CHECK(pool.free_tokens() == 1);
}

TEST_CASE("cancel after the grant: lost_race, the token is held and on_grant already ran") {
    TokenPool pool(1, 4);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    TokenWaiter& waiter = w.make(1);
    REQUIRE(pool.acquire(waiter) == TokenStatus::queued);
    pool.release();
    CHECK(pool.cancel(waiter) == CancelResult::lost_race);
    CHECK(w.order == std::vector<int>{1});
    CHECK(pool.in_use() == 1);
    pool.release();
    CHECK(pool.in_use() == 0);
}

TEST_CASE("cancelled waiters never make the queue full") {
    TokenPool pool(1, 4);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    for (int i = 1; i <= 3; ++i) REQUIRE(pool.acquire(w.make(i)) == TokenStatus::queued);
    // Many more waiters come and give up while the three at the front keep waiting;
    // their tickets wrap the ring many times over.
    for (int i = 0; i < 10000; ++i) {
        TokenWaiter passer(&record_grant, nullptr);
        REQUIRE(pool.acquire(passer) == TokenStatus::queued);
        REQUIRE(pool.cancel(passer) == CancelResult::cancelled);
    }
    CHECK(pool.queue_depth() == 3);
    CHECK(pool.acquire(w.make(4)) == TokenStatus::queued);
    CHECK(pool.acquire(w.make(5)) == TokenStatus::queue_full);
    for (int i = 0; i < 4; ++i) pool.release();
    CHECK(w.order == std::vector<int>{1, 2, 3, 4});
    pool.release();
    CHECK(pool.free_tokens() == 1);
    CHECK(pool.queue_depth() == 0);
}

TEST_CASE("a long wait at the head survives later waiters reusing its ring cell") {
    TokenPool pool(1, 2);  // smallest ring: later tickets land on the head's cell often
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    REQUIRE(pool.acquire(w.make(1)) == TokenStatus::queued);
    for (int i = 0; i < 1000; ++i) {
        TokenWaiter passer(&record_grant, nullptr);
        REQUIRE(pool.acquire(passer) == TokenStatus::queued);
        REQUIRE(pool.cancel(passer) == CancelResult::cancelled);
    }
    REQUIRE(pool.acquire(w.make(2)) == TokenStatus::queued);
    pool.release();
    pool.release();
    CHECK(w.order == std::vector<int>{1, 2});
    pool.release();
    CHECK(pool.free_tokens() == 1);
}

TEST_CASE("raising the capacity grants waiters at once; lowering it retires released tokens") {
    TokenPool pool(1, 8);
    Waiters w;
    REQUIRE(pool.acquire(w.make(0)) == TokenStatus::granted);
    for (int i = 1; i <= 3; ++i) REQUIRE(pool.acquire(w.make(i)) == TokenStatus::queued);
    pool.set_capacity(3);
    CHECK(pool.capacity() == 3);
    CHECK(w.order == std::vector<int>{1, 2});
    CHECK(pool.in_use() == 3);
    CHECK(pool.queue_depth() == 1);

    pool.set_capacity(1);
    CHECK(pool.in_use() == 3);  // nothing held is revoked
    pool.release();             // retired: 2 in use, still over the new capacity
    pool.release();             // retired: 1 in use
    CHECK(w.order == std::vector<int>{1, 2});
    pool.release();  // within capacity again: handed to the waiter
    CHECK(w.order == std::vector<int>{1, 2, 3});
    pool.release();
    CHECK(pool.in_use() == 0);
    CHECK(pool.free_tokens() == 1);
}

TEST_CASE("capacity 0 queues everyone until a token exists") {
    TokenPool pool(0, 4);
    Waiters w;
    REQUIRE(pool.acquire(w.make(1)) == TokenStatus::queued);
    pool.set_capacity(1);
    CHECK(w.order == std::vector<int>{1});
    pool.release();
    CHECK(pool.free_tokens() == 1);
}

TEST_CASE("TokenGuard releases on destruction, once, and moves ownership") {
    TokenPool pool(2, 4);
    {
        REQUIRE(pool.try_acquire());
        TokenGuard a(pool);
        CHECK(pool.in_use() == 1);
        TokenGuard b(std::move(a));
        // The moved-from guard is what this checks.
        CHECK_FALSE(a.holds());  // NOLINT(bugprone-use-after-move)
        CHECK(b.holds());
        CHECK(pool.in_use() == 1);
        REQUIRE(pool.try_acquire());
        TokenGuard c(pool);
        c = std::move(b);  // c's own token goes back first
        CHECK(pool.in_use() == 1);
    }
    CHECK(pool.in_use() == 0);
    CHECK(pool.free_tokens() == 2);
}

// A grant whose on_grant is slow: cancel() must not return before it is over.
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
    TokenPool pool(1, 4);
    REQUIRE(pool.try_acquire());
    SlowGrant slow;
    TokenWaiter waiter(&slow_grant, &slow);
    REQUIRE(pool.acquire(waiter) == TokenStatus::queued);
    std::thread releaser([&] { pool.release(); });
    while (!slow.entered.load()) std::this_thread::yield();
    CHECK(pool.cancel(waiter) == CancelResult::lost_race);
    CHECK(slow.finished.load());
    releaser.join();
    pool.release();
    CHECK(pool.free_tokens() == 1);
}

// ---------------------------------------------------------------------------------------
// Model tests: threads acting like shards, checked at rest after every round.

struct ModelCounts {
    std::atomic<long> errors{0};
    std::atomic<long> granted{0};
    std::atomic<long> woken{0};
    std::atomic<long> cancelled{0};
    std::atomic<long> lost_race{0};
    std::atomic<long> queue_full{0};
    std::atomic<long> rounds{0};
    std::atomic<int> held{0};
};

// One request: acquire, maybe wait up to `wait` for the grant, hold for hold_us, release.
void run_request(TokenPool& pool, Mailbox& box, std::uint64_t id, std::chrono::microseconds wait,
                 int hold_us, ModelCounts& counts) {
    auto* a = new Attempt;
    a->box = &box;
    a->id = id;
    TokenWaiter waiter(&test::on_grant_attempt, a);
    bool holds = false;
    switch (pool.acquire(waiter)) {
    case TokenStatus::granted:
        holds = true;
        counts.granted.fetch_add(1);
        if (a->grants.load() != 0) counts.errors.fetch_add(1);
        break;
    case TokenStatus::queue_full:
        counts.queue_full.fetch_add(1);
        if (a->grants.load() != 0) counts.errors.fetch_add(1);
        break;
    case TokenStatus::queued:
        if (box.wait_for(id, wait)) {
            holds = true;
            counts.woken.fetch_add(1);
            if (a->grants.load() != 1) counts.errors.fetch_add(1);
        } else if (pool.cancel(waiter) == CancelResult::cancelled) {
            counts.cancelled.fetch_add(1);
            if (a->grants.load() != 0) counts.errors.fetch_add(1);
        } else {
            holds = true;
            counts.lost_race.fetch_add(1);
            // on_grant ran exactly once and its wake-up is already posted.
            if (a->grants.load() != 1 || !box.take_now(id)) counts.errors.fetch_add(1);
        }
        break;
    }
    delete a;
    if (!holds) return;
    TokenGuard token(pool);
    const int holders = counts.held.fetch_add(1) + 1;
    if (holders > static_cast<int>(pool.capacity())) counts.errors.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(hold_us);
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
    counts.held.fetch_sub(1);
}

// At rest: nothing held, nothing waiting, every token back in the pool.
void check_at_rest(const TokenPool& pool, ModelCounts& counts, std::vector<Mailbox>& boxes) {
    bool ok = counts.held.load() == 0 && pool.in_use() == 0 &&
              pool.free_tokens() == static_cast<std::int64_t>(pool.capacity()) &&
              pool.queue_depth() == 0;
    for (Mailbox& b : boxes) ok = ok && b.size() == 0;  // no stray wake-up
    if (!ok) counts.errors.fetch_add(1);
    counts.rounds.fetch_add(1);
}

// The workload of one model run.
struct ModelShape {
    int threads = 8;
    int requests_per_round = 40;  // between two checks at rest
    int give_up_percent = 90;     // waits that end after 0..max_wait_us (a fifth of them at once)
    int max_wait_us = 300;
    int max_hold_us = 60;
    // The other waits end only by a grant or this watchdog, whose expiry shows up as a
    // cancel: a waiter nobody woke although tokens came free.
    std::chrono::milliseconds watchdog{10000};
};

void run_model(TokenPool& pool, const ModelShape& shape, ModelCounts& counts) {
    std::vector<Mailbox> boxes(static_cast<std::size_t>(shape.threads));
    const auto deadline = std::chrono::steady_clock::now() + test::model_duration();
    std::atomic<bool> stop{false};
    auto at_rest = [&]() noexcept {
        check_at_rest(pool, counts, boxes);
        if (std::chrono::steady_clock::now() >= deadline) stop.store(true);
    };
    std::barrier round(shape.threads, at_rest);
    std::vector<std::thread> workers;
    workers.reserve(static_cast<std::size_t>(shape.threads));
    for (int t = 0; t < shape.threads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937_64 rng(static_cast<std::uint64_t>(t) * 7919 + 1);
            std::uint64_t next_id = 0;
            auto pick = [&](int below) {
                return static_cast<int>(rng() % static_cast<unsigned>(below));
            };
            while (!stop.load()) {
                for (int i = 0; i < shape.requests_per_round; ++i) {
                    const int p = pick(100);
                    std::chrono::microseconds wait = shape.watchdog;
                    if (p < shape.give_up_percent) {
                        wait = std::chrono::microseconds(pick(shape.max_wait_us + 1));
                    }
                    if (p < shape.give_up_percent / 5) wait = 0us;  // client gone at once
                    run_request(pool, boxes[static_cast<std::size_t>(t)], ++next_id, wait,
                                pick(shape.max_hold_us + 1), counts);
                }
                round.arrive_and_wait();
            }
        });
    }
    for (auto& w : workers) w.join();
}

void report(const std::string& name, const ModelCounts& c) {
    MESSAGE(name << ": rounds " << c.rounds.load() << ", granted " << c.granted.load()
                 << ", woken " << c.woken.load() << ", cancelled " << c.cancelled.load()
                 << ", lost_race " << c.lost_race.load() << ", queue_full "
                 << c.queue_full.load());
}

TEST_CASE("model: random holds, timeouts and cancels lose and duplicate no token") {
    TokenPool pool(2, 3);  // 8 threads: some hold, some wait, some find the queue full
    ModelCounts counts;
    run_model(pool, ModelShape{}, counts);
    report("token model", counts);
    CHECK(counts.errors.load() == 0);
    CHECK(counts.rounds.load() > 0);
    // The workload reached every path it is meant to race.
    CHECK(counts.woken.load() > 0);
    CHECK(counts.cancelled.load() > 0);
    CHECK(counts.queue_full.load() > 0);
    CHECK(pool.in_use() == 0);
    CHECK(pool.free_tokens() == 2);
    CHECK(pool.queue_depth() == 0);
}

TEST_CASE("model: with nobody giving up, no waiter is left waiting while a token is free") {
    // Every wait ends only by a grant or a 2 s watchdog (legitimate waits here last
    // microseconds). One request per thread per round: all threads start together, the
    // release/enqueue race is at its densest, and at each round's end nobody is left to
    // pass on a token that a lost wake-up stranded.
    ModelShape shape;
    shape.requests_per_round = 1;
    shape.give_up_percent = 0;
    shape.max_hold_us = 3;
    shape.watchdog = 2000ms;
    for (std::uint32_t capacity : {1u, 2u}) {
        TokenPool pool(capacity, 16);
        ModelCounts counts;
        run_model(pool, shape, counts);
        report("token no-lost-wakeup", counts);
        CHECK(counts.errors.load() == 0);
        CHECK(counts.woken.load() > 0);
        CHECK(counts.cancelled.load() == 0);
        CHECK(pool.free_tokens() == capacity);
    }
}

TEST_CASE("model: FIFO among waiters that did not cancel (one release at a time)") {
    // Capacity 1: only the holder releases, so releases never overlap and the grant order
    // is well defined.
    TokenPool pool(1, 64);
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
            std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 99);
            Mailbox& box = boxes[static_cast<std::size_t>(t)];
            for (std::uint64_t id = 1; std::chrono::steady_clock::now() < deadline; ++id) {
                auto* a = new Attempt;
                a->box = &box;
                a->id = id;
                a->grant_clock = &grant_clock;
                TokenWaiter waiter(&test::on_grant_attempt, a);
                test::Served s{clock.fetch_add(1) + 1, 0, 0};
                const TokenStatus st = pool.acquire(waiter);
                s.end = clock.fetch_add(1) + 1;
                bool holds = st == TokenStatus::granted;
                if (holds) s.grant_seq = grant_clock.fetch_add(1) + 1;
                if (st == TokenStatus::queued) {
                    // A third of the waiters give up early.
                    const auto wait = rng() % 3 == 0 ? std::chrono::microseconds(rng() % 200) : 10s;
                    if (box.wait_for(id, wait)) {
                        holds = true;
                    } else if (pool.cancel(waiter) == CancelResult::lost_race) {
                        holds = box.take_now(id);
                        if (!holds) errors.fetch_add(1);
                    } else {
                        cancelled.fetch_add(1);
                    }
                    if (holds) s.grant_seq = a->grant_seq.load();
                }
                if (st == TokenStatus::queue_full) errors.fetch_add(1);  // 64 > 8 threads
                delete a;
                if (!holds) continue;
                served[static_cast<std::size_t>(t)].push_back(s);
                std::this_thread::yield();
                pool.release();
            }
        });
    }
    for (auto& w : workers) w.join();
    std::vector<test::Served> all;
    for (auto& v : served) all.insert(all.end(), v.begin(), v.end());
    MESSAGE("token FIFO: served " << all.size() << ", cancelled " << cancelled.load());
    CHECK(errors.load() == 0);
    CHECK(all.size() > 100);
    CHECK(cancelled.load() > 0);
    CHECK(test::fifo_violations(all) == 0);
    CHECK(pool.free_tokens() == 1);
    CHECK(pool.queue_depth() == 0);
}

}  // namespace
}  // namespace rr::gateway

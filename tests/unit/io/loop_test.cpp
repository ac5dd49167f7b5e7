// io::Loop on its own: cross-thread posts and their wake-ups, timers, defer, stop.
// The post tests run the loop with no timers and no I/O, so the only thing that
// can wake it is the eventfd ring of the wake-up protocol: a lost wake-up shows as
// an item that never runs (detected by the posting thread, which then stops the
// loop, so a failing test ends instead of hanging).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <thread>
#include <vector>

#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/task.hpp"

using namespace rr::io;
using Clock = std::chrono::steady_clock;

namespace {

// One posting thread's reusable work item: posted, run on the loop, posted again.
struct Item : Posted {
    std::atomic<bool> done{true};
    std::atomic<std::thread::id>* ran_on = nullptr;
    std::atomic<int>* runs = nullptr;
};

void run_item(Posted* p) {
    auto* it = static_cast<Item*>(p);
    it->runs->fetch_add(1, std::memory_order_relaxed);
    it->ran_on->store(std::this_thread::get_id(), std::memory_order_relaxed);
    it->done.store(true, std::memory_order_release);
}

// Waits (spinning politely) until it.done or the bound passes; false = lost.
bool wait_run(const Item& it, Clock::duration bound) {
    const Clock::time_point until = Clock::now() + bound;
    while (!it.done.load(std::memory_order_acquire)) {
        if (Clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

struct PostStress {
    int threads;
    int rounds;          // posts per thread
    int depth;           // posts each thread keeps in flight
};

struct PostStressResult {
    bool lost = false;   // some item was not run within the bound
    int runs = 0;
    int expected = 0;
    bool all_on_loop_thread = true;
};

// Several threads post into a loop that has nothing else to wake it; each thread
// posts a burst, waits until the loop ran all of it, and repeats.
PostStressResult post_stress(const PostStress& cfg) {
    Loop loop;
    std::atomic<int> runs{0};
    std::atomic<bool> lost{false};
    std::atomic<int> finished{0};
    std::atomic<std::thread::id> ran_on{};
    std::vector<std::vector<Item>> items(static_cast<std::size_t>(cfg.threads));
    for (auto& v : items) {
        v = std::vector<Item>(static_cast<std::size_t>(cfg.depth));
        for (Item& it : v) {
            it.run = &run_item;
            it.runs = &runs;
            it.ran_on = &ran_on;
        }
    }
    std::vector<std::thread> posters;
    for (int t = 0; t < cfg.threads; ++t) {
        posters.emplace_back([&, t] {
            std::vector<Item>& mine = items[static_cast<std::size_t>(t)];
            // Keep up to `depth` posts in flight: an item is posted again once the
            // loop has run it. The loop is kept busy draining while others push,
            // which is when a wake-up protocol can lose a ring.
            for (int r = 0; r < cfg.rounds; ++r) {
                Item& it = mine[static_cast<std::size_t>(r % cfg.depth)];
                // A live loop runs a post within microseconds; 5 s is "never".
                if (lost.load() || !wait_run(it, std::chrono::seconds(5))) {
                    lost.store(true);
                    break;
                }
                it.done.store(false, std::memory_order_relaxed);
                loop.post(&it);
            }
            for (Item& it : mine)
                if (!lost.load() && !wait_run(it, std::chrono::seconds(5))) lost.store(true);
            if (finished.fetch_add(1) + 1 == cfg.threads) loop.stop();
        });
    }
    loop.run();
    for (std::thread& th : posters) th.join();
    PostStressResult res;
    res.lost = lost.load();
    res.runs = runs.load();
    res.expected = cfg.threads * cfg.rounds;
    res.all_on_loop_thread = res.runs == 0 || ran_on.load() == std::this_thread::get_id();
    return res;
}

}  // namespace

TEST_CASE("posts from several threads each run once, on the loop thread, in each poster's order") {
    Loop loop;
    constexpr int kThreads = 3, kPerThread = 400;
    struct Seq : Posted {
        int thread = 0;
        int value = 0;
        std::vector<std::vector<int>>* seen = nullptr;
        std::thread::id* ran_on = nullptr;
        std::atomic<int>* left = nullptr;
        Loop* loop = nullptr;
    };
    std::vector<std::vector<int>> seen(kThreads);
    std::vector<Seq> seqs(kThreads * kPerThread);
    std::thread::id ran_on;
    std::atomic<int> left{kThreads * kPerThread};
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t) {
        posters.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                Seq& s = seqs[static_cast<std::size_t>(t * kPerThread + i)];
                s.thread = t;
                s.value = i;
                s.seen = &seen;
                s.ran_on = &ran_on;
                s.left = &left;
                s.loop = &loop;
                s.run = [](Posted* p) {
                    auto* self = static_cast<Seq*>(p);
                    (*self->seen)[static_cast<std::size_t>(self->thread)].push_back(self->value);
                    *self->ran_on = std::this_thread::get_id();
                    if (self->left->fetch_sub(1) == 1) self->loop->stop();
                };
                loop.post(&s);
            }
        });
    }
    loop.run();
    for (std::thread& th : posters) th.join();
    CHECK(loop.stats().posted == kThreads * kPerThread);
    CHECK(ran_on == std::this_thread::get_id());
    for (int t = 0; t < kThreads; ++t) {
        const std::vector<int>& v = seen[static_cast<std::size_t>(t)];
        REQUIRE(v.size() == kPerThread);
        CHECK(std::is_sorted(v.begin(), v.end()));
    }
}

// Rounds are fewer under TSan, which slows every atomic access many times over.
#if defined(__SANITIZE_THREAD__)
constexpr int kRounds = 20000;
#else
constexpr int kRounds = 100000;
#endif

// The wake-up protocol under contention. The old protocol (a wake_pending flag set
// after the push, cleared only when the loop found work) lost its flag when a
// drain took a poster's item between that poster's push and its flag exchange;
// from then on every post was silent and a loop with no timers slept forever.
// Against it this test failed 3 runs of 4 (150k rounds per poster, each configuration about 2 of 3).
TEST_CASE("no wake-up is lost: posters never find a post unrun, one or several in flight") {
    for (const int depth : {1, 4}) {
        CAPTURE(depth);
        const PostStressResult r = post_stress({/*threads=*/4, kRounds, depth});
        CHECK_FALSE(r.lost);
        CHECK(r.runs == r.expected);
        CHECK(r.all_on_loop_thread);
    }
}

TEST_CASE("stop from another thread wakes a loop that sleeps with nothing armed") {
    Loop loop;
    std::atomic<bool> ran{false};
    std::thread stopper([&] {
        // Stop only once the loop has run the post (it then goes back to sleep with
        // nothing armed): the wake-up must come from stop() itself.
        while (!ran.load()) std::this_thread::yield();
        loop.stop();
    });
    struct First : Posted {
        std::atomic<bool>* ran;
    } first;
    first.ran = &ran;
    first.run = [](Posted* p) { static_cast<First*>(p)->ran->store(true); };
    loop.post(&first);
    loop.run();
    stopper.join();
    CHECK(ran.load());
    CHECK(loop.stopping());
}

TEST_CASE("timers fire in deadline order, never before their deadline, and the loop sleeps until them") {
    Loop loop;
    struct Probe : Timer {
        Probe(Loop* l, std::vector<int>* o, int id)
            : Timer([](Timer* t) {
                  auto* p = static_cast<Probe*>(t);
                  p->fired_at = p->loop->now_ms();
                  p->order->push_back(p->id);
                  if (p->order->size() == 3) p->loop->stop();
              }),
              loop(l), order(o), id(id) {}
        Loop* loop;
        std::vector<int>* order;
        int id;
        std::uint64_t fired_at = 0;
    };
    std::vector<int> order;
    Probe a(&loop, &order, 1), b(&loop, &order, 2), c(&loop, &order, 3);
    const std::uint64_t t0 = loop.now_ms();
    loop.timers().arm(b, t0 + 60);
    loop.timers().arm(c, t0 + 90);
    loop.timers().arm(a, t0 + 30);
    loop.run();
    CHECK(order == std::vector<int>{1, 2, 3});
    CHECK(a.fired_at >= t0 + 30);
    CHECK(b.fired_at >= t0 + 60);
    CHECK(c.fired_at >= t0 + 90);
    // Sleeping until the nearest deadline, not spinning: a handful of iterations
    // per timer, not thousands.
    CHECK(loop.stats().iterations < 100);
}

TEST_CASE("a cancelled timer does not fire and SleepUntil resumes after its deadline") {
    Loop loop;
    struct Flag : Timer {
        Flag() : Timer([](Timer* t) { static_cast<Flag*>(t)->fired = true; }) {}
        bool fired = false;
    } cancelled;
    loop.timers().arm(cancelled, loop.now_ms() + 20);
    loop.timers().cancel(cancelled);
    std::uint64_t woke = 0;
    const std::uint64_t t0 = loop.now_ms();
    spawn([](Loop& l, std::uint64_t& at) -> Task<void> {
        co_await SleepUntil(l, l.now_ms() + 40);
        at = l.now_ms();
        l.stop();
    }(loop, woke));
    loop.run();
    CHECK_FALSE(cancelled.fired);
    CHECK(woke >= t0 + 40);
}

TEST_CASE("defer resumes at the end of the iteration, not inside the caller") {
    Loop loop;
    struct Ctx {
        std::vector<int> log;
        std::coroutine_handle<> waiting;
    } ctx;
    struct Park {
        Ctx* c;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) noexcept { c->waiting = h; }
        void await_resume() const noexcept {}
    };
    spawn([](Ctx& c, Loop& l) -> Task<void> {
        co_await Park{&c};
        c.log.push_back(2);
        l.stop();
    }(ctx, loop));
    struct Kick : Posted {
        Ctx* c;
        Loop* l;
    } kick;
    kick.c = &ctx;
    kick.l = &loop;
    kick.run = [](Posted* p) {
        auto* k = static_cast<Kick*>(p);
        k->l->defer(k->c->waiting);
        k->c->log.push_back(1);  // runs before the deferred resume
    };
    loop.post(&kick);
    loop.run();
    CHECK(ctx.log == std::vector<int>{1, 2});
}

// The cost of a queued request's hand-off across shards: a global token released on
// shard A, handed by the TokenPool to the oldest waiter, which waits on shard B's
// loop (GrantWait: on_grant posts to B's loop, B's eventfd wakes it, B resumes the
// coroutine). Two real io_uring loops on two threads play ping-pong with one token;
// each hand-off is timed from just before release() to the waiter's resumption.
//
//     handoff-bench [ROUNDS]        prints median / p90 / p99 in microseconds
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "grant_wait.hpp"
#include "ringrelay/gateway/token_pool.hpp"
#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/task.hpp"

using namespace rr;
using Clock = std::chrono::steady_clock;

namespace {

gateway::TokenPool g_pool(1, 16);
std::atomic<std::int64_t> g_released_at{0};
std::atomic<int> g_finished{0};

std::int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

// Resumes at the end of the loop's iteration: lets the loop turn while we poll.
struct YieldToLoop {
    io::Loop& loop;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { loop.defer(h); }
    void await_resume() noexcept {}
};

io::Task<void> player(io::Loop& loop, bool starts_holding, int rounds, std::vector<double>& samples) {
    for (int i = 0; i < rounds; ++i) {
        if (!(starts_holding && i == 0)) {
            gateway::GrantWait gw(loop);
            gateway::TokenWaiter waiter(&gateway::GrantWait::on_grant, &gw);
            if (g_pool.acquire(waiter) == gateway::TokenStatus::queued) {
                co_await gw.wait(0);
                samples.push_back((now_ns() - g_released_at.load()) / 1000.0);
            }
        }
        // Hand the token over only once the other side waits for it.
        while (g_pool.queue_depth() == 0 && g_finished.load() == 0) co_await YieldToLoop{loop};
        g_released_at.store(now_ns());
        g_pool.release();
    }
    g_finished.fetch_add(1);
    loop.stop();
}

void run_side(int core, bool starts_holding, int rounds, std::vector<double>& samples) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core % std::max(1u, std::thread::hardware_concurrency()), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    io::Loop loop;
    if (starts_holding) g_pool.try_acquire();
    io::spawn(player(loop, starts_holding, rounds, samples));
    loop.run();
}

double percentile(std::vector<double>& v, double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[static_cast<std::size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 20000;
    std::vector<double> a, b;
    std::thread ta(run_side, 0, true, rounds, std::ref(a));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // A holds before B asks
    std::thread tb(run_side, 1, false, rounds, std::ref(b));
    ta.join();
    tb.join();
    std::vector<double> all(a);
    all.insert(all.end(), b.begin(), b.end());
    std::printf("cross-shard token hand-off over %zu hand-offs: median %.1f us, p90 %.1f us, p99 %.1f us\n",
                all.size(), percentile(all, 0.5), percentile(all, 0.9), percentile(all, 0.99));
    return 0;
}

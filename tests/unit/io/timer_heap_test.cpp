#include <doctest/doctest.h>

#include <memory>
#include <random>
#include <vector>

#include "ringrelay/io/timer.hpp"

using rr::io::Timer;
using rr::io::TimerHeap;

namespace {
std::vector<int>* g_fired = nullptr;
struct Tagged : Timer {
    explicit Tagged(int t) : Timer([](Timer* self) { g_fired->push_back(static_cast<Tagged*>(self)->tag); }), tag(t) {}
    int tag;
};
}  // namespace

TEST_CASE("timers fire in deadline order and only once due") {
    std::vector<int> fired;
    g_fired = &fired;
    TimerHeap heap;
    Tagged a(1), b(2), c(3);
    heap.arm(a, 300);
    heap.arm(b, 100);
    heap.arm(c, 200);
    CHECK(heap.next_deadline() == 100);
    heap.run_expired(150);
    CHECK(fired == std::vector<int>{2});
    heap.run_expired(1000);
    CHECK(fired == std::vector<int>{2, 3, 1});
    CHECK(heap.size() == 0);
    CHECK_FALSE(a.armed());
}

TEST_CASE("a cancelled timer never fires and re-arming moves it") {
    std::vector<int> fired;
    g_fired = &fired;
    TimerHeap heap;
    Tagged a(1), b(2);
    heap.arm(a, 100);
    heap.arm(b, 200);
    heap.cancel(a);
    heap.cancel(a);  // idempotent
    heap.arm(b, 50);
    heap.run_expired(120);
    CHECK(fired == std::vector<int>{2});
    CHECK(heap.next_deadline() == UINT64_MAX);
}

TEST_CASE("the heap stays ordered under random arm and cancel") {
    std::vector<int> fired;
    g_fired = &fired;
    TimerHeap heap;
    std::mt19937 rng(7);
    std::vector<std::unique_ptr<Tagged>> timers;
    for (int i = 0; i < 2000; ++i) timers.push_back(std::make_unique<Tagged>(i));
    for (auto& t : timers) heap.arm(*t, rng() % 100000);
    for (int i = 0; i < 700; ++i) heap.cancel(*timers[rng() % timers.size()]);
    const std::size_t live = heap.size();
    heap.run_expired(UINT64_MAX - 1);
    REQUIRE(fired.size() == live);
    for (std::size_t i = 1; i < fired.size(); ++i)
        CHECK(timers[fired[i - 1]]->deadline_ms <= timers[fired[i]]->deadline_ms);
}

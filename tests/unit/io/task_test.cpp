#include <doctest/doctest.h>

#include <coroutine>
#include <string>

#include "ringrelay/io/task.hpp"

using rr::io::Task;

namespace {

// An awaitable resumed by hand, standing in for an I/O completion.
struct Gate {
    std::coroutine_handle<> waiter;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
    void await_resume() const noexcept {}
    void open() { std::exchange(waiter, nullptr).resume(); }
};

Task<int> add_after(Gate& g, int a, int b) {
    co_await g;
    co_return a + b;
}

Task<std::string> describe(Gate& g) {
    const int n = co_await add_after(g, 2, 3);
    co_return "sum=" + std::to_string(n);
}

Task<int> deep(int n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await deep(n - 1);
}

}  // namespace

TEST_CASE("a task runs only when awaited and hands its value to the awaiter") {
    Gate gate;
    std::string result;
    bool finished = false;
    rr::io::spawn([](Gate& g, std::string& out, bool& done) -> Task<void> {
        out = co_await describe(g);
        done = true;
    }(gate, result, finished));
    CHECK_FALSE(finished);
    REQUIRE(gate.waiter);
    gate.open();
    CHECK(finished);
    CHECK(result == "sum=5");
}

TEST_CASE("deep chains of awaited tasks do not grow the stack (symmetric transfer)") {
    // Symmetric transfer is a tail call only when the compiler optimises; an
    // unoptimised or sanitized build recurses, so there the chain is shorter.
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    constexpr int kDepth = 100000;
#else
    constexpr int kDepth = 2000;
#endif
    int result = -1;
    rr::io::spawn([](int& out) -> Task<void> { out = co_await deep(kDepth); }(result));
    CHECK(result == kDepth);
}

TEST_CASE("frames are recycled by size class") {
    void* a = rr::io::frame_alloc(200);
    rr::io::frame_free(a, 200);
    void* b = rr::io::frame_alloc(193);  // same 64-byte class (193..256)
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(a == b);
#endif
    rr::io::frame_free(b, 193);
    void* big = rr::io::frame_alloc(1 << 20);
    CHECK(big != nullptr);
    rr::io::frame_free(big, 1 << 20);
}

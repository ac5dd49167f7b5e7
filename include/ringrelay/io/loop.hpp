// Loop: one shard's io_uring event loop. The whole loop is: prepare SQEs, submit
// and wait (until the nearest timer), reap CQEs, dispatch each on its user_data.
//
// user_data is always the address of a Completion. That is safe because every
// Completion outlives its last CQE by construction: one-shot ops live in the frame
// of the coroutine suspended on them, and a Socket (which owns a multishot recv)
// frees itself only after its final CQE has arrived. The value 0 marks CQEs nobody
// waits for (cancel requests, fire-and-forget closes).
//
// Threading: a Loop is created, run and destroyed on one thread, and only that
// thread touches it, except post(), which any thread may call.
//
// Ownership: the loop owns its ring, its buffer ring, its timer heap and its eventfd.
// Completions, Posted nodes and Timers are the callers' (intrusive): each must stay
// alive until its CQE, run() or firing; a Posted node belongs to the poster until
// run() is called on the loop thread.
//
// Errors: the constructor throws std::system_error when the ring, the buffer ring or
// the eventfd cannot be set up, and run() when waiting on the ring fails (fatal);
// operations report -errno in their CQEs, never by throwing.
#pragma once

#include <liburing.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <string>
#include <vector>

#include "ringrelay/io/buffer_ring.hpp"
#include "ringrelay/io/timer.hpp"

namespace rr::io {

class Socket;

struct Completion {
    using OnCqe = void (*)(Completion*, int res, std::uint32_t flags);
    explicit Completion(OnCqe f) noexcept : on_cqe(f) {}
    OnCqe on_cqe;
};

// Work handed to a loop from another thread (a token released on shard A for a
// waiter on shard B). Intrusive: the poster owns the node until run() is called.
struct Posted {
    Posted* next = nullptr;
    void (*run)(Posted*) = nullptr;
};

struct LoopOptions {
    unsigned sq_entries = 1024;
    unsigned cq_entries = 16384;  // multishot recv/accept post many CQEs per SQE
    unsigned buffer_count = 1024; // provided receive buffers (power of two)
    unsigned buffer_size = 16 * 1024;
};

struct LoopStats {
    std::uint64_t iterations = 0;
    std::uint64_t cqes = 0;
    std::uint64_t enobufs = 0;       // multishot recv found the buffer ring empty
    std::uint64_t recv_spills = 0;   // received buffers copied out of the ring under pressure
    std::uint64_t cq_overflows = 0;  // the CQ ring overflowed (kernel kept the CQEs: NODROP)
    std::uint64_t posted = 0;        // cross-thread wake-ups run
};

class Loop {
public:
    // Sets up the ring (SINGLE_ISSUER | DEFER_TASKRUN when the kernel takes them,
    // falling back step by step) and the provided-buffer ring. Throws
    // std::system_error when no io_uring can be had at all.
    explicit Loop(const LoopOptions& opts = {});
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // The loop of the calling thread (the last one constructed on it).
    static Loop& current() noexcept { return *tl_current_; }

    // A free SQE; submits pending ones first when the SQ is full. Never null.
    io_uring_sqe* sqe();
    // Asks the kernel to cancel the op whose user_data is c (its CQE then arrives
    // with -ECANCELED, unless it completed first).
    void cancel(Completion* c);

    // Runs until stop() has been called.
    void run();
    // After run() returned: runs on until every socket (and listener) of this loop
    // has had its last CQE, or timeout_ms passes. Shutdown and tests use it so that
    // nothing is freed while the kernel may still complete an op for it.
    void drain_sockets(std::uint64_t timeout_ms);
    // Thread-safe: ask run() to return at its next iteration.
    void stop() noexcept;
    bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

    // Thread-safe: runs p->run(p) on this loop's thread soon. Never blocks.
    void post(Posted* p) noexcept;

    // Loop thread: resumes h at the end of this iteration instead of now, so code that
    // wakes many waiters (a drain cutting sessions) never runs one inside another.
    // h must stay suspended, and resumed by nobody else, until then.
    void defer(std::coroutine_handle<> h) { deferred_.push_back(h); }

    std::uint64_t now_ms() const noexcept { return now_ms_; }
    TimerHeap& timers() noexcept { return timers_; }
    BufferRing& buffers() noexcept { return buffers_; }
    LoopStats& stats() noexcept { return stats_; }
    // Sockets whose multishot recv stopped on -ENOBUFS wait here until a buffer
    // is recycled (Socket calls these; nothing else should).
    void park_starved(Socket* s) { starved_.push_back(s); }
    void unpark_starved(Socket* s) noexcept;
    void retry_starved();
    bool has_starved() const noexcept { return !starved_.empty(); }

    // Sockets alive on this loop (counted by Socket itself): a shard shutting down
    // waits until this is 0, so every socket's last CQE has been reaped.
    void socket_opened() noexcept { ++live_sockets_; }
    void socket_closed() noexcept { --live_sockets_; }
    std::size_t live_sockets() const noexcept { return live_sockets_; }

    // Which ring setup flags the kernel took, for the start-up log line.
    const std::string& setup_description() const noexcept { return setup_desc_; }

private:
    static void on_wakeup(Completion* c, int res, std::uint32_t flags);
    void arm_wakeup();
    void run_posted();
    void run_deferred();
    void iterate();
    void reap();
    void update_clock() noexcept;

    static thread_local Loop* tl_current_;

    io_uring ring_{};
    BufferRing buffers_;
    TimerHeap timers_;
    LoopStats stats_;
    std::uint64_t now_ms_ = 0;
    std::string setup_desc_;
    std::atomic<bool> stop_{false};
    std::vector<Socket*> starved_;
    std::vector<std::coroutine_handle<>> deferred_;
    std::size_t live_sockets_ = 0;

    // Cross-thread inbox: a Treiber stack drained whole (and reversed, so FIFO). The
    // push that finds it empty rings wake_fd_ (see post()).
    std::atomic<Posted*> inbox_{nullptr};
    int wake_fd_ = -1;
    struct WakeCompletion : Completion {
        explicit WakeCompletion(Loop* l) noexcept : Completion(&Loop::on_wakeup), loop(l) {}
        Loop* loop;
    };
    WakeCompletion wake_completion_{this};
};

// Awaitable one-shot op with an optional deadline (0 = none). prep fills the SQE.
// co_await yields the CQE's res, or -ETIMEDOUT when the deadline passed first
// (a result that arrived anyway is kept: a recv that raced its timeout loses nothing).
template <class Prep>
class Op : Completion, Timer {
public:
    Op(Loop& loop, Prep prep, std::uint64_t deadline_ms = 0) noexcept
        : Completion(&Op::complete), Timer(&Op::expire), loop_(loop), prep_(prep),
          deadline_(deadline_ms) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        handle_ = h;
        io_uring_sqe* s = loop_.sqe();
        prep_(s);
        io_uring_sqe_set_data(s, static_cast<Completion*>(this));
        if (deadline_ != 0) loop_.timers().arm(*this, deadline_);
    }
    int await_resume() noexcept {
        loop_.timers().cancel(*this);
        return (timed_out_ && res_ < 0) ? -ETIMEDOUT : res_;
    }
    std::uint32_t cqe_flags() const noexcept { return flags_; }

private:
    static void complete(Completion* c, int res, std::uint32_t flags) {
        auto* op = static_cast<Op*>(c);
        op->res_ = res;
        op->flags_ = flags;
        op->handle_.resume();
    }
    static void expire(Timer* t) {
        auto* op = static_cast<Op*>(t);
        op->timed_out_ = true;
        op->loop_.cancel(op);
    }

    Loop& loop_;
    Prep prep_;
    std::uint64_t deadline_;
    std::coroutine_handle<> handle_;
    int res_ = 0;
    std::uint32_t flags_ = 0;
    bool timed_out_ = false;
};

template <class Prep>
Op<Prep> op(Loop& loop, Prep prep, std::uint64_t deadline_ms = 0) noexcept {
    return Op<Prep>(loop, prep, deadline_ms);
}

// Suspends until deadline_ms (monotonic) without any SQE: a timer in the heap.
class SleepUntil : Timer {
public:
    SleepUntil(Loop& loop, std::uint64_t deadline_ms) noexcept
        : Timer(&SleepUntil::expire), loop_(loop), deadline_(deadline_ms) {}
    bool await_ready() const noexcept { return deadline_ <= loop_.now_ms(); }
    void await_suspend(std::coroutine_handle<> h) {
        handle_ = h;
        loop_.timers().arm(*this, deadline_);
    }
    void await_resume() noexcept {}

private:
    static void expire(Timer* t) { static_cast<SleepUntil*>(t)->handle_.resume(); }
    Loop& loop_;
    std::uint64_t deadline_;
    std::coroutine_handle<> handle_;
};

}  // namespace rr::io

// GrantWait: a coroutine waiting for a token or key slot that another thread may
// grant. The grant calls on_grant (any thread), which posts this object to the
// waiting shard's loop; the loop resumes the coroutine on its own thread. This is
// the named, visible shard crossing of the design (no shared pointer tricks, no
// sleeping loop).
//
// Protocol: co_await wait(deadline) -> granted | timed_out | interrupted. Unless
// granted, the caller cancels with the pool; if the pool says the grant already
// happened (lost race), the post is on its way: co_await arrival() before letting
// this object die, then release what was granted.
#pragma once

#include <coroutine>
#include <utility>

#include "ringrelay/io/loop.hpp"

namespace rr::gateway {

class GrantWait : io::Posted, io::Timer {
public:
    enum class Result { granted, timed_out, interrupted };

    explicit GrantWait(io::Loop& loop) noexcept : io::Timer(&GrantWait::expire), loop_(loop) {
        io::Posted::run = &GrantWait::arrive;
    }
    GrantWait(const GrantWait&) = delete;
    GrantWait& operator=(const GrantWait&) = delete;

    // The GrantFn for TokenWaiter / KeyWaiter, with ctx = this. Any thread.
    static void on_grant(void* ctx) noexcept {
        auto* self = static_cast<GrantWait*>(ctx);
        self->loop_.post(self);
    }

    // Ends a pending wait() with interrupted (client gone, drain). Loop thread only;
    // the waiter resumes at the end of the loop iteration, not inside the caller.
    void interrupt() noexcept {
        interrupted_ = true;
        if (std::coroutine_handle<> h = std::exchange(handle_, nullptr)) loop_.defer(h);
    }

    class Wait {
    public:
        Wait(GrantWait& g, std::uint64_t deadline) noexcept : g_(g), deadline_(deadline) {}
        bool await_ready() const noexcept { return g_.granted_ || g_.interrupted_; }
        void await_suspend(std::coroutine_handle<> h) {
            g_.handle_ = h;
            if (deadline_ != 0) g_.loop_.timers().arm(g_, deadline_);
        }
        Result await_resume() noexcept {
            g_.loop_.timers().cancel(g_);
            if (g_.granted_) return Result::granted;
            return g_.interrupted_ ? Result::interrupted : Result::timed_out;
        }

    private:
        GrantWait& g_;
        std::uint64_t deadline_;
    };
    Wait wait(std::uint64_t deadline_ms) noexcept { return {*this, deadline_ms}; }

    class Arrival {
    public:
        explicit Arrival(GrantWait& g) noexcept : g_(g) {}
        bool await_ready() const noexcept { return g_.granted_; }
        void await_suspend(std::coroutine_handle<> h) noexcept { g_.handle_ = h; }
        void await_resume() noexcept {}

    private:
        GrantWait& g_;
    };
    // Waits for a grant known to be on its way (after a lost cancel race).
    Arrival arrival() noexcept { return Arrival(*this); }

private:
    static void arrive(io::Posted* p) {
        auto* self = static_cast<GrantWait*>(p);
        self->granted_ = true;
        self->wake();
    }
    static void expire(io::Timer* t) { static_cast<GrantWait*>(t)->wake(); }
    void wake() {
        if (std::coroutine_handle<> h = std::exchange(handle_, nullptr)) h.resume();
    }

    io::Loop& loop_;
    std::coroutine_handle<> handle_;
    bool granted_ = false;
    bool interrupted_ = false;
};

}  // namespace rr::gateway

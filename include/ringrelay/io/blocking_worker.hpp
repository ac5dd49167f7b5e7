// BlockingWorker: one thread for work that may block on disk (LMDB write
// transactions with their fsync, hot backups), so a shard never does. A coroutine
// hands it a function and is resumed on its own shard, through Loop::post(), when
// the function has run:
//
//     store::Status s;
//     co_await worker.run(loop, [&] { s = store::revoke_key(env, id, reason, now); });
//
// Jobs run one at a time in submission order (LMDB serialises writers anyway).
//
// Ownership and lifetimes: the Job lives in the awaiting coroutine's frame until it
// is resumed; fn (and what it captures by reference) must stay valid until then, and
// the loop must outlive every job submitted for it. The destructor runs the jobs
// still queued, then joins the thread: destroy the worker only after the loops whose
// coroutines wait on it have stopped submitting. run() may be called from any thread.
//
// Errors: fn reports its own (capture a status, as above); an exception escaping fn
// terminates the process (it runs on the worker thread). Constructing the worker
// throws std::system_error if the thread cannot start.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "ringrelay/common.hpp"
#include "ringrelay/io/loop.hpp"

namespace rr::io {

class BlockingWorker {
public:
    // `name` names the thread (top -H): rr-blocking for the admin's store writes,
    // rr-resolver for DNS lookups.
    explicit BlockingWorker(std::string_view name = "rr-blocking") : name_(name), thread_([this] { work(); }) {}
    ~BlockingWorker() {
        {
            std::lock_guard lk(mu_);
            stopping_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    BlockingWorker(const BlockingWorker&) = delete;
    BlockingWorker& operator=(const BlockingWorker&) = delete;

    class Job : io::Posted {
    public:
        Job(BlockingWorker& w, io::Loop& loop, std::function<void()> fn) noexcept
            : worker_(w), loop_(loop), fn_(std::move(fn)) {
            io::Posted::run = [](io::Posted* p) { static_cast<Job*>(p)->handle_.resume(); };
        }
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
            handle_ = h;
            worker_.submit(this);
        }
        void await_resume() noexcept {}

    private:
        friend class BlockingWorker;
        BlockingWorker& worker_;
        io::Loop& loop_;
        std::function<void()> fn_;
        std::coroutine_handle<> handle_;
    };

    // Awaitable: runs fn on the worker thread, resumes the caller on loop.
    Job run(io::Loop& loop, std::function<void()> fn) noexcept { return Job(*this, loop, std::move(fn)); }

private:
    void submit(Job* job) {
        {
            std::lock_guard lk(mu_);
            jobs_.push_back(job);
        }
        cv_.notify_one();
    }
    void work() {
        name_this_thread(name_);
        std::unique_lock lk(mu_);
        for (;;) {
            cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stopping, and nothing left
            Job* job = jobs_.front();
            jobs_.pop_front();
            lk.unlock();
            job->fn_();
            job->loop_.post(job);  // the Job lives in the waiting frame until resumed
            lk.lock();
        }
    }

    std::string name_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job*> jobs_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace rr::io

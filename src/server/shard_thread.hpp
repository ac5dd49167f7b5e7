// ShardThread: main's handle on one shard thread. The Shard lives on (and is made
// and destroyed by) its own thread; main reaches it only through with_shard(), which
// holds the handle's lock, so the shard cannot be destroyed while main calls into it
// (the calls themselves are thread-safe: Loop::post or an atomic).
//
// A shard that fails (its loop throws, e.g. io_uring_submit_and_wait returns an
// error it cannot go on from) logs one JSON line naming the shard and the error and
// is marked failed; main then drains the other shards and the process exits 1 (see
// OPERATIONS "A shard failed"): a dead shard's SO_REUSEPORT listener would otherwise
// keep taking connections that nobody serves.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "ringrelay/obs/log.hpp"

namespace rr::relay {
class Shard;
}

namespace rr::server {

using relay::Shard;

class ShardThread {
public:
    std::thread thread;

    // Called by the shard thread: the shard is ready for main's calls, or gone.
    void attach(Shard* s) noexcept {
        std::lock_guard lk(mu_);
        shard_ = s;
    }
    void detach() noexcept {
        std::lock_guard lk(mu_);
        shard_ = nullptr;
    }
    // Runs fn(Shard&) if the shard is attached; the shard stays alive meanwhile.
    // fn must not block (it runs under the lock the shard thread takes to detach).
    template <class Fn>
    bool with_shard(Fn&& fn) {
        std::lock_guard lk(mu_);
        if (shard_ == nullptr) return false;
        fn(*shard_);
        return true;
    }

    // Runs body (the shard's whole life on this thread); an exception escaping it is
    // logged and marks the shard failed instead of ending the process. finished()
    // is true afterwards either way.
    template <class Body>
    void run_guarded(unsigned index, Body&& body) noexcept {
        try {
            body();
        } catch (const std::exception& e) {
            fail(index, e.what());
        } catch (...) {
            fail(index, "unknown exception");
        }
        finished_.store(true);
    }

    bool finished() const noexcept { return finished_.load(); }
    bool failed() const noexcept { return failed_.load(); }

private:
    void fail(unsigned index, const char* what) noexcept {
        detach();
        failed_.store(true);
        try {
            obs::log(obs::Level::error, "shard failed", {{"shard", index}, {"error", what}});
        } catch (...) {  // out of memory while logging: the failed flag still tells main
        }
    }

    std::mutex mu_;
    Shard* shard_ = nullptr;
    std::atomic<bool> finished_{false};
    std::atomic<bool> failed_{false};
};

}  // namespace rr::server

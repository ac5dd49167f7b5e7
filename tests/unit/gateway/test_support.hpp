// Shared pieces of the gateway model tests: a stand-in for a shard's event loop, the
// record of one wait, and the run length of the model tests.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace rr::gateway::test {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// How long each model test runs: RR_MODEL_SECONDS if set (e.g. 60 for a soak), else
// 1.5 s, or 0.4 s under TSan, which runs these loops some 10x slower.
inline std::chrono::milliseconds model_duration() {
    if (const char* env = std::getenv("RR_MODEL_SECONDS")) {
        const double seconds = std::strtod(env, nullptr);
        if (seconds > 0) return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    }
    return std::chrono::milliseconds(kThreadSanitizer ? 400 : 1500);
}

// What a shard's event loop is to a waiting coroutine: on_grant posts the waiter's id,
// the waiting thread takes it out, with a timeout like the shard's timer.
class Mailbox {
public:
    void post(std::uint64_t id) {
        {
            std::lock_guard lock(mu_);
            ids_.push_back(id);
        }
        cv_.notify_all();
    }

    // Waits up to `timeout` for `id` and removes it. false: the timeout passed first.
    bool wait_for(std::uint64_t id, std::chrono::microseconds timeout) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return remove_locked(id); });
    }

    // Removes `id` if it is already there, without waiting.
    bool take_now(std::uint64_t id) {
        std::lock_guard lock(mu_);
        return remove_locked(id);
    }

    std::size_t size() {
        std::lock_guard lock(mu_);
        return ids_.size();
    }

private:
    bool remove_locked(std::uint64_t id) {
        auto it = std::find(ids_.begin(), ids_.end(), id);
        if (it == ids_.end()) return false;
        ids_.erase(it);
        return true;
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::uint64_t> ids_;
};

// One wait, allocated per attempt and freed as soon as the attempt is over, so an
// on_grant that comes after cancel() returned is a heap-use-after-free under ASan.
struct Attempt {
    Mailbox* box = nullptr;
    std::uint64_t id = 0;
    std::atomic<int> grants{0};
    std::atomic<std::uint64_t> grant_seq{0};
    std::atomic<std::uint64_t>* grant_clock = nullptr;  // optional: stamps grant order
};

inline void on_grant_attempt(void* ctx) {
    auto* a = static_cast<Attempt*>(ctx);
    if (a->grant_clock != nullptr) a->grant_seq.store(a->grant_clock->fetch_add(1) + 1);
    a->grants.fetch_add(1);
    a->box->post(a->id);
}

// One served request of a FIFO check: when its acquire started and returned (one clock
// shared by all threads) and the order in which it got its grant.
struct Served {
    std::uint64_t start;
    std::uint64_t end;
    std::uint64_t grant_seq;
};

// FIFO among waiters: if A's acquire returned before B's began, A is served first. In
// grant order, a violation is a later-granted A whose acquire ended before the start of
// some earlier-granted B. Returns the number of violations.
inline std::size_t fifo_violations(std::vector<Served> served) {
    std::sort(served.begin(), served.end(),
              [](const Served& a, const Served& b) { return a.grant_seq < b.grant_seq; });
    std::size_t violations = 0;
    std::uint64_t max_start = 0;
    for (const Served& s : served) {
        if (max_start > s.end) ++violations;
        max_start = std::max(max_start, s.start);
    }
    return violations;
}

}  // namespace rr::gateway::test

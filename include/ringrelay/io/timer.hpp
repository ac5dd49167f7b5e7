// TimerHeap: the one timer mechanism of a shard. Every deadline (header timeout,
// upstream timeout, stream idle, queue wait) is an intrusive Timer in a binary
// min-heap, so arming and disarming are O(log n) without allocation, and the loop
// sleeps exactly until the nearest deadline. Single-threaded: only the owning
// shard touches its heap.
//
// Ownership: the heap only points at Timers it does not own; an armed Timer must stay
// at one address and alive until it fires or is cancelled (a Timer is usually a member
// or a base of the object it serves, which cancels it in its own teardown). Nothing
// is reported as an error; arm() may throw std::bad_alloc when the heap grows.
#pragma once

#include <cstdint>
#include <vector>

namespace rr::io {

struct Timer {
    static constexpr std::uint32_t kNotArmed = UINT32_MAX;

    using Fire = void (*)(Timer*);
    explicit Timer(Fire f = nullptr) noexcept : fire(f) {}
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    bool armed() const noexcept { return heap_index != kNotArmed; }

    std::uint64_t deadline_ms = 0;
    std::uint32_t heap_index = kNotArmed;
    Fire fire;
};

class TimerHeap {
public:
    // (Re)arms t to fire at deadline_ms (monotonic milliseconds). The Timer must stay
    // alive until it fires or is cancelled.
    void arm(Timer& t, std::uint64_t deadline_ms);
    // Disarms t; a no-op when t is not armed.
    void cancel(Timer& t) noexcept;
    // The nearest deadline, or UINT64_MAX when nothing is armed.
    std::uint64_t next_deadline() const noexcept {
        return heap_.empty() ? UINT64_MAX : heap_.front()->deadline_ms;
    }
    // Fires (and disarms) every timer whose deadline is <= now_ms, earliest first.
    // A fire callback may arm or cancel timers, including itself.
    void run_expired(std::uint64_t now_ms);
    std::size_t size() const noexcept { return heap_.size(); }

private:
    void sift_up(std::uint32_t i) noexcept;
    void sift_down(std::uint32_t i) noexcept;
    void place(std::uint32_t i, Timer* t) noexcept {
        heap_[i] = t;
        t->heap_index = i;
    }
    std::vector<Timer*> heap_;
};

}  // namespace rr::io

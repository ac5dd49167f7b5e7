// Deadlines of one event loop: a binary min-heap of (due time, connection slot,
// generation, token). Cancelling is lazy: the owner of a stale entry (a closed
// connection, a superseded timer) no longer matches slot+generation+token when it
// fires, so nothing needs to be removed early. Cost: O(log n) per add and pop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <vector>

namespace rr::mock {

inline std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct TimerEntry {
    std::int64_t due_ns;
    std::uint32_t slot;
    std::uint32_t generation;
    std::uint64_t token;
};

class TimerHeap {
public:
    void add(const TimerEntry& e) {
        heap_.push_back(e);
        std::push_heap(heap_.begin(), heap_.end(), later);
    }

    // Milliseconds until the earliest entry is due, rounded up so a wake-up is never
    // early; -1 when there is none (epoll_wait's "forever").
    int wait_ms(std::int64_t now_ns) const noexcept {
        if (heap_.empty()) return -1;
        const std::int64_t left = heap_.front().due_ns - now_ns;
        if (left <= 0) return 0;
        const std::int64_t ms = (left + 999'999) / 1'000'000;
        return ms > 3'600'000 ? 3'600'000 : static_cast<int>(ms);
    }

    // Removes the entries due at now_ns and passes each to fire, earliest first. fire
    // may add entries; the call still ends after at most as many pops as there were
    // entries when it began, so a zero-delay re-arm cannot keep it spinning.
    template <class Fire>
    void pop_due(std::int64_t now_ns, Fire&& fire) {
        std::size_t budget = heap_.size();
        while (budget-- > 0 && !heap_.empty() && heap_.front().due_ns <= now_ns) {
            std::pop_heap(heap_.begin(), heap_.end(), later);
            const TimerEntry e = heap_.back();
            heap_.pop_back();
            fire(e);
        }
    }

private:
    static bool later(const TimerEntry& a, const TimerEntry& b) noexcept {
        return a.due_ns > b.due_ns;
    }
    std::vector<TimerEntry> heap_;
};

}  // namespace rr::mock

#include "ringrelay/io/timer.hpp"

namespace rr::io {

void TimerHeap::arm(Timer& t, std::uint64_t deadline_ms) {
    if (t.armed()) cancel(t);
    t.deadline_ms = deadline_ms;
    heap_.push_back(&t);
    t.heap_index = static_cast<std::uint32_t>(heap_.size() - 1);
    sift_up(t.heap_index);
}

void TimerHeap::cancel(Timer& t) noexcept {
    if (!t.armed()) return;
    const std::uint32_t i = t.heap_index;
    Timer* last = heap_.back();
    heap_.pop_back();
    t.heap_index = Timer::kNotArmed;
    if (last == &t) return;
    place(i, last);
    sift_down(i);
    sift_up(last->heap_index);
}

void TimerHeap::run_expired(std::uint64_t now_ms) {
    while (!heap_.empty() && heap_.front()->deadline_ms <= now_ms) {
        Timer* t = heap_.front();
        cancel(*t);
        t->fire(t);
    }
}

void TimerHeap::sift_up(std::uint32_t i) noexcept {
    Timer* t = heap_[i];
    while (i > 0) {
        const std::uint32_t parent = (i - 1) / 2;
        if (heap_[parent]->deadline_ms <= t->deadline_ms) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, t);
}

void TimerHeap::sift_down(std::uint32_t i) noexcept {
    const auto n = static_cast<std::uint32_t>(heap_.size());
    Timer* t = heap_[i];
    for (;;) {
        std::uint32_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap_[child + 1]->deadline_ms < heap_[child]->deadline_ms) ++child;
        if (heap_[child]->deadline_ms >= t->deadline_ms) break;
        place(i, heap_[child]);
        i = child;
    }
    place(i, t);
}

}  // namespace rr::io

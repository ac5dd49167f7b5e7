#include "stats.hpp"

namespace rr::mock {

MockState::MockState(std::size_t loops, std::string name) : name_(std::move(name)) {
    loops_.reserve(loops);
    for (std::size_t i = 0; i < loops; ++i) loops_.push_back(std::make_unique<PerLoop>());
}

void MockState::record_last(std::size_t loop, std::string_view head, std::string_view body) {
    const std::uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    PerLoop& mine = *loops_[loop];
    std::lock_guard lock(mine.last_mutex);
    mine.last.seq = seq;
    mine.last.head.assign(head);
    mine.last.body.assign(body);
}

bool MockState::latest(LastRequest& out) const {
    out.seq = 0;
    for (const auto& loop : loops_) {
        std::lock_guard lock(loop->last_mutex);
        if (loop->last.seq > out.seq) out = loop->last;
    }
    return out.seq != 0;
}

std::uint64_t MockState::raw_total(Counter c) const noexcept {
    std::uint64_t sum = 0;
    for (const auto& loop : loops_) sum += loop->stats.get(c);
    return sum;
}

std::uint64_t MockState::total(Counter c) const noexcept {
    const std::uint64_t now = raw_total(c);
    const auto& baseline = baseline_[static_cast<std::size_t>(c)];
    const std::uint64_t base = baseline.load(std::memory_order_relaxed);
    return now > base ? now - base : 0;
}

std::uint64_t MockState::connections_open() const noexcept {
    // Read closed first: a connection that closes between the two reads can then only
    // make the answer one too high for an instant, never wrap below zero.
    const std::uint64_t closed = raw_total(Counter::connections_closed);
    const std::uint64_t accepted = raw_total(Counter::connections_accepted);
    return accepted > closed ? accepted - closed : 0;
}

void MockState::reset() {
    for (std::size_t i = 0; i < kCounterCount; ++i)
        baseline_[i].store(raw_total(static_cast<Counter>(i)), std::memory_order_relaxed);
    for (const auto& loop : loops_) {
        std::lock_guard lock(loop->last_mutex);
        loop->last.seq = 0;
    }
    responses_.clear();
    std::lock_guard lock(failing_mutex_);
    failing_.clear();
    failing_count_.store(0, std::memory_order_relaxed);
}

void MockState::set_failing_path(std::string_view path, int status) {
    std::lock_guard lock(failing_mutex_);
    if (status == 0) failing_.erase(std::string(path));
    else failing_[std::string(path)] = status;
    failing_count_.store(failing_.size(), std::memory_order_relaxed);
}

int MockState::failing_status(std::string_view path) const {
    if (failing_count_.load(std::memory_order_relaxed) == 0) return 0;
    std::lock_guard lock(failing_mutex_);
    const auto it = failing_.find(std::string(path));
    return it == failing_.end() ? 0 : it->second;
}

}  // namespace rr::mock

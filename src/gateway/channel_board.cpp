#include "ringrelay/gateway/channel_board.hpp"

namespace rr::gateway {

ChannelBoard::State& ChannelBoard::state(std::string_view channel_id) {
    std::lock_guard lk(mu_);
    auto it = by_id_.find(std::string(channel_id));
    if (it != by_id_.end()) return *it->second;
    State& s = states_.emplace_back(std::string(channel_id));
    by_id_.emplace(s.id, &s);
    return s;
}

bool ChannelBoard::circuit_open(const State& s, std::int64_t now_ms) noexcept {
    return now_ms < s.forced_open_until_ms.load(std::memory_order_relaxed) ||
           now_ms < s.open_until_ms.load(std::memory_order_relaxed);
}

void ChannelBoard::record_success(State& s) noexcept {
    s.requests.fetch_add(1, std::memory_order_relaxed);
    s.consecutive_failures.store(0, std::memory_order_relaxed);
    s.open_until_ms.store(0, std::memory_order_relaxed);
}

void ChannelBoard::record_failure(State& s, std::int64_t now_ms) noexcept {
    s.requests.fetch_add(1, std::memory_order_relaxed);
    s.failures.fetch_add(1, std::memory_order_relaxed);
    const std::uint32_t n = s.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
    // Half-open: once the period has passed, one more failure re-opens at once.
    const bool was_opened = s.open_until_ms.load(std::memory_order_relaxed) != 0;
    if (n >= kFailuresToOpen || was_opened) s.open_until_ms.store(now_ms + kOpenForMs, std::memory_order_relaxed);
}

void ChannelBoard::force_open(State& s, std::int64_t now_ms, std::int64_t for_ms) noexcept {
    s.forced_open_until_ms.store(now_ms + (for_ms > 0 ? for_ms : kOpenForMs), std::memory_order_relaxed);
}

void ChannelBoard::force_closed(State& s) noexcept {
    s.forced_open_until_ms.store(0, std::memory_order_relaxed);
    s.open_until_ms.store(0, std::memory_order_relaxed);
    s.consecutive_failures.store(0, std::memory_order_relaxed);
}

void ChannelBoard::for_each(const std::function<void(const State&)>& fn) const {
    std::lock_guard lk(mu_);
    for (const State& s : states_) fn(s);
}

}  // namespace rr::gateway

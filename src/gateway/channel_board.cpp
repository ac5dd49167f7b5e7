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
    return health_down(s) || now_ms < s.forced_open_until_ms.load(std::memory_order_relaxed) ||
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
    if (health_down(s)) {
        s.health.store(Health::up, std::memory_order_relaxed);
        s.check_failures.store(0, std::memory_order_relaxed);
    }
}

ChannelBoard::Health ChannelBoard::record_check(State& s, bool ok, int status, std::int64_t now_ms) noexcept {
    s.checks.store(s.checks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    s.last_check_ms.store(now_ms, std::memory_order_relaxed);
    s.last_check_status.store(status, std::memory_order_relaxed);
    Health h = s.health.load(std::memory_order_relaxed);
    if (ok) {
        s.check_failures.store(0, std::memory_order_relaxed);
        const std::uint32_t n = s.check_successes.load(std::memory_order_relaxed) + 1;
        s.check_successes.store(n, std::memory_order_relaxed);
        // A first good check is enough to call an unchecked channel up; a down one
        // must prove itself kCheckSuccessesToUp times in a row.
        if (h == Health::unchecked || (h == Health::down && n >= kCheckSuccessesToUp)) h = Health::up;
    } else {
        s.checks_failed.store(s.checks_failed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        s.check_successes.store(0, std::memory_order_relaxed);
        const std::uint32_t n = s.check_failures.load(std::memory_order_relaxed) + 1;
        s.check_failures.store(n, std::memory_order_relaxed);
        if (n >= kCheckFailuresToDown) h = Health::down;
    }
    s.health.store(h, std::memory_order_relaxed);
    return h;
}

void ChannelBoard::clear_health(State& s) noexcept {
    s.health.store(Health::unchecked, std::memory_order_relaxed);
    s.check_failures.store(0, std::memory_order_relaxed);
    s.check_successes.store(0, std::memory_order_relaxed);
}

std::string_view ChannelBoard::health_name(Health h) noexcept {
    switch (h) {
    case Health::up: return "up";
    case Health::down: return "down";
    case Health::unchecked: break;
    }
    return "unchecked";
}

void ChannelBoard::for_each(const std::function<void(const State&)>& fn) const {
    std::lock_guard lk(mu_);
    for (const State& s : states_) fn(s);
}

}  // namespace rr::gateway

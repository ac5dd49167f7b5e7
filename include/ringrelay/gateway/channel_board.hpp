// ChannelBoard: the live state of every channel, shared by all shards: requests in
// flight (for max_concurrency), consecutive failures and the circuit breaker.
// Channel records (URL, weight, limits) stay in LMDB; only what changes per request
// lives here.
//
// Threads: state() takes a mutex the first time a channel id is seen; the State it
// returns is never freed or moved, so shards cache the pointer and touch only its
// atomics afterwards (no lock on the request path).
//
// Circuit: after kFailuresToOpen consecutive failures (connect error, reset, 5xx,
// timeout) a channel's circuit opens for kOpenFor; once that passes, requests flow
// again (half-open) and the first success closes it, the next failure re-opens it.
// An operator may force it open for a while, or close it now (admin API); the
// automatic breaker keeps working after either.
//
// Health: a channel with an active health check (relay/health_checker) is marked
// down after kCheckFailuresToDown consecutive failed checks and up again after
// kCheckSuccessesToUp consecutive good ones. While down its circuit reads open, so
// the channel pick skips it and ringrelay_channel_up is 0. The checker is the only
// writer of the check fields (one thread); readers see each field torn-free.
//
// Ownership: the board owns every State; they live (at one address) as long as the
// board, which GatewayShared keeps for the server's life. Errors: none reported; the
// record_* and force_* calls are noexcept, state() may throw std::bad_alloc.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rr::gateway {

class ChannelBoard {
public:
    static constexpr std::uint32_t kFailuresToOpen = 5;
    static constexpr std::int64_t kOpenForMs = 30'000;
    static constexpr std::uint32_t kCheckFailuresToDown = 2;
    static constexpr std::uint32_t kCheckSuccessesToUp = 2;

    enum class Health : std::uint8_t { unchecked, up, down };

    struct State {
        explicit State(std::string channel_id) : id(std::move(channel_id)) {}
        const std::string id;
        std::atomic<std::uint32_t> in_flight{0};
        std::atomic<std::uint32_t> consecutive_failures{0};
        std::atomic<std::int64_t> open_until_ms{0};    // circuit open while now < this
        std::atomic<std::int64_t> forced_open_until_ms{0};
        std::atomic<std::uint64_t> requests{0};
        std::atomic<std::uint64_t> failures{0};
        // Active health check (written by the checker only).
        std::atomic<Health> health{Health::unchecked};
        std::atomic<std::uint32_t> check_failures{0};   // consecutive
        std::atomic<std::uint32_t> check_successes{0};  // consecutive
        std::atomic<std::int64_t> last_check_ms{0};
        std::atomic<int> last_check_status{0};  // HTTP status of the last check; 0: no answer
        std::atomic<std::uint64_t> checks{0};
        std::atomic<std::uint64_t> checks_failed{0};
    };

    // The state of channel_id, created on first sight. Never null; stable address.
    State& state(std::string_view channel_id);

    static bool circuit_open(const State& s, std::int64_t now_ms) noexcept;
    // Whether one more request fits under max_concurrency (0 = unlimited).
    static bool saturated(const State& s, std::uint32_t max_concurrency) noexcept {
        return max_concurrency != 0 && s.in_flight.load(std::memory_order_relaxed) >= max_concurrency;
    }
    // Whether a health check has marked the channel down.
    static bool health_down(const State& s) noexcept {
        return s.health.load(std::memory_order_relaxed) == Health::down;
    }
    // One finished health check; returns the health it leaves (a change is what the
    // checker logs).
    static Health record_check(State& s, bool ok, int status, std::int64_t now_ms) noexcept;
    // Checks were turned off (or the channel removed): forget what they said.
    static void clear_health(State& s) noexcept;
    static std::string_view health_name(Health h) noexcept;

    static void record_success(State& s) noexcept;
    static void record_failure(State& s, std::int64_t now_ms) noexcept;

    // Operator overrides: open for `for_ms` (0 = the default period), or close now
    // (which also forgets a health-check "down": the next failed checks mark it again).
    static void force_open(State& s, std::int64_t now_ms, std::int64_t for_ms) noexcept;
    static void force_closed(State& s) noexcept;

    // Calls fn for every channel seen so far (admin state, metrics).
    void for_each(const std::function<void(const State&)>& fn) const;

private:
    mutable std::mutex mu_;
    std::deque<State> states_;  // deque: addresses stay put as it grows
    std::unordered_map<std::string, State*> by_id_;
};

// RAII: one request in flight on a channel.
class ChannelSlot {
public:
    ChannelSlot() noexcept = default;
    // Takes a slot if one more request fits under max_concurrency (0 = unlimited);
    // the check and the increment are one atomic step, so shards cannot overshoot.
    static ChannelSlot try_enter(ChannelBoard::State& s, std::uint32_t max_concurrency) noexcept {
        std::uint32_t n = s.in_flight.load(std::memory_order_relaxed);
        do {
            if (max_concurrency != 0 && n >= max_concurrency) return {};
        } while (!s.in_flight.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
        ChannelSlot slot;
        slot.s_ = &s;
        return slot;
    }
    bool holds() const noexcept { return s_ != nullptr; }
    ChannelSlot(ChannelSlot&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    ChannelSlot& operator=(ChannelSlot&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = o.s_;
            o.s_ = nullptr;
        }
        return *this;
    }
    ChannelSlot(const ChannelSlot&) = delete;
    ChannelSlot& operator=(const ChannelSlot&) = delete;
    ~ChannelSlot() { reset(); }
    void reset() noexcept {
        if (s_) s_->in_flight.fetch_sub(1, std::memory_order_relaxed);
        s_ = nullptr;
    }

private:
    ChannelBoard::State* s_ = nullptr;
};

}  // namespace rr::gateway

// What the mock has seen, for tests to read between steps (GET /__mock/stats and
// /__mock/last). Each event loop writes only its own counters and its own last
// request, so the per-request cost is a relaxed store and one uncontended lock; the
// readers (any loop answering /__mock/*) sum over all loops.
//
// Lifetime: one MockState is created before the loop threads start and outlives them;
// the set of loops is fixed at construction.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "response_store.hpp"

namespace rr::mock {

enum class Counter : std::uint8_t {
    requests,              // requests on non-/__mock paths (what a proxy forwarded)
    connections_accepted,
    connections_closed,    // not reported; connections_open = accepted - closed
    streams_started,       // stream head sent
    streams_completed,     // terminating chunk written to the socket
    streams_cut,           // peer went away between the stream head and its end
    streams_broken,        // the mock cut the stream itself (x-mock-behavior: close-mid-stream)
    hangs_aborted,         // peer went away while x-mock-behavior: hang held it
    delays_aborted,        // peer went away during x-mock-delay-ms, before the head
    resets,                // connections closed with RST (x-mock-behavior: reset)
    count_
};

inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::count_);

// Counters of one loop. Written by that loop's thread only (load + store, no locked
// instruction); read by any thread.
class LoopStats {
public:
    void add(Counter c) noexcept {
        auto& slot = values_[static_cast<std::size_t>(c)];
        slot.store(slot.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::uint64_t get(Counter c) const noexcept {
        return values_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
    }

private:
    alignas(64) std::array<std::atomic<std::uint64_t>, kCounterCount> values_{};
};

// The last request received on a non-/__mock path: raw head bytes and decoded body.
struct LastRequest {
    std::uint64_t seq = 0;  // 0: none since start or reset
    std::string head;
    std::string body;
};

class MockState {
public:
    explicit MockState(std::size_t loops, std::string name = "mock");

    // This mock's name (--name, else "mock<port>"): part of every response id it makes.
    const std::string& name() const noexcept { return name_; }
    // The /v1/responses responses made (reset() clears them).
    ResponseStore& responses() noexcept { return responses_; }

    LoopStats& stats(std::size_t loop) noexcept { return loops_[loop]->stats; }

    // Stores a copy of head (raw bytes up to and including CRLF CRLF) and body as
    // loop's latest request. Cost: two string assignments under the loop's own mutex.
    void record_last(std::size_t loop, std::string_view head, std::string_view body);

    // Copies the most recent request of all loops into out; false when there is none.
    bool latest(LastRequest& out) const;

    // Counter totals since the last reset (connections_open is never reset: it is a gauge).
    std::uint64_t total(Counter c) const noexcept;
    std::uint64_t connections_open() const noexcept;

    // Zeroes the reported counters, forgets the last request, every failing path and
    // the responses made.
    void reset();

    // Failing paths (POST /__mock/fail): every request whose path is exactly `path`
    // is answered with `status` (>= 400), whatever its headers ask; status 0 clears.
    void set_failing_path(std::string_view path, int status);
    // The status to fail `path` with, or 0. One relaxed load while no path fails.
    int failing_status(std::string_view path) const;

private:
    struct PerLoop {
        LoopStats stats;
        mutable std::mutex last_mutex;
        LastRequest last;
    };
    std::uint64_t raw_total(Counter c) const noexcept;

    std::string name_;
    ResponseStore responses_;
    std::vector<std::unique_ptr<PerLoop>> loops_;
    std::atomic<std::uint64_t> next_seq_{1};
    std::array<std::atomic<std::uint64_t>, kCounterCount> baseline_{};
    mutable std::mutex failing_mutex_;
    std::unordered_map<std::string, int> failing_;  // guarded by failing_mutex_
    std::atomic<std::size_t> failing_count_{0};
};

}  // namespace rr::mock

// What one event loop lends to its connections: its timers, its counters, the shared
// MockState and scratch space reused by every request on the loop. Owned by the
// loop, used only on its thread; connections hold a reference for their lifetime
// (the loop outlives them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <ringrelay/http.hpp>

#include "request_json.hpp"
#include "stats.hpp"
#include "timers.hpp"

namespace rr::mock {

struct LoopContext {
    LoopContext(std::size_t loop_index, MockState& shared)
        : index(loop_index), state(shared), stats(shared.stats(loop_index)) {}

    std::size_t index;
    MockState& state;
    LoopStats& stats;
    TimerHeap timers;
    RequestJsonReader json;
    http::RequestHead head;  // parse target: 4 KiB of header views, too big for each connection
    std::string text;        // body / event text before framing
    std::uint64_t next_serial = 1;
    std::array<char, 64 * 1024> recv_buffer;
};

}  // namespace rr::mock

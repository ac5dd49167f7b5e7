// The end of every request: one access-log record and the request's metrics,
// written by the shard into its own ring and counter block (never blocking).
//
// The ShardObs outputs are borrowed (owned by the server; null ones are skipped) and
// rc is read during the call only. Called on the request's shard thread. Nothing
// fails visibly: a full access-log ring drops the line and counts it (access_log.hpp).
#pragma once

#include <cstdint>

#include "ringrelay/relay/shard_obs.hpp"

namespace rr::relay {

struct RequestContext;

// Monotonic nanoseconds (the request clock; the loop's own clock is milliseconds).
std::uint64_t monotonic_ns() noexcept;

void finish_request(ShardObs& obs, const RequestContext& rc, std::uint64_t end_ns) noexcept;

// --log-level debug: a `key acquired` / `key released` / `upstream queue` event.
enum class DebugEvent { key_acquired, key_released, upstream_queue };
void log_debug_event(ShardObs& obs, DebugEvent e, const RequestContext& rc, std::uint32_t count) noexcept;

}  // namespace rr::relay

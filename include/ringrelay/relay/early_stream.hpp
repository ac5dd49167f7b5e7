// A streaming request that has to wait (for its key slot or a global token) gets its
// 200 and SSE head at once, a keep-alive ping every 15 s while it waits, and, if the
// wait fails, the error as a final SSE `error` event (REFERENCE.md section 3). Once the
// wait ends well, the upstream's stream is spliced into the response already begun.
//
// The functions borrow the session and the request context (both must outlive the
// await) and run on the session's shard. A failed send (the client is gone, or the
// send timed out) is -errno or false, as each says; nothing throws, nothing is kept.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringrelay/io/task.hpp"

namespace rr::relay {

struct ClientSession;
struct RequestContext;

inline constexpr std::uint64_t kStreamPingIntervalMs = 15'000;

// The dialect of the pings: Anthropic's /v1/messages has its own ping event.
bool anthropic_stream(std::string_view path) noexcept;

// Sends "200 OK, text/event-stream" (chunked for HTTP/1.1, close-delimited for
// 1.0) and marks it seen (rc.saw_early_stream_head()). Returns 0 or -errno.
io::Task<int> start_early_stream(ClientSession& cs, RequestContext& rc);
// One ping event. Returns 0 or -errno.
io::Task<int> send_stream_ping(ClientSession& cs, RequestContext& rc);
// The error as a final SSE `error` event with the JSON error body, then the end of
// the response. Returns whether the connection may carry another request.
io::Task<bool> end_stream_with_error(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                                     std::string_view message);
// Frames payload for the early stream (a chunk for HTTP/1.1, raw for 1.0).
void append_stream_piece(std::string& out, const RequestContext& rc, std::string_view payload);
// The end of an early stream (the last chunk for HTTP/1.1; nothing for 1.0).
std::string_view stream_terminator(const RequestContext& rc) noexcept;

}  // namespace rr::relay

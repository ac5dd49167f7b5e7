// Reading a request's whole body before answering it: the gateway routes on its
// JSON, the admin API parses it. (relay mode streams bodies instead: exchange.cpp.)
//
// read_whole_body borrows the session, the request context, the limits (and the
// view in them) and the caller's body string, all of which must outlive the await;
// it runs on the session's shard. A body that cannot be had is not an exception: the
// returned WholeBody says refused (what to answer) or client_gone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringrelay/io/task.hpp"

namespace rr::relay {

struct ClientSession;
struct RequestContext;

struct WholeBodyLimits {
    std::uint64_t max_bytes = 0;       // a larger body is refused with 413
    std::uint64_t idle_timeout_ms = 0; // between two arrivals; then 408
    // The 413's message when Content-Length says so at once; empty: "request body is
    // larger than N bytes" (made only then).
    std::string_view too_large;
};

// How reading ended. refused: answer status/code/message (and close: the rest of the
// body is unread); client_gone: nothing to answer.
struct WholeBody {
    enum Kind : std::uint8_t { complete, refused, client_gone } kind = complete;
    int status = 0;
    std::string_view code;
    std::string message;
};

// Appends the decoded body (Content-Length or chunked) to body, sending 100 Continue
// first when the client asked for it. Counts what it reads in rc.bytes_in.
io::Task<WholeBody> read_whole_body(ClientSession& cs, RequestContext& rc, const WholeBodyLimits& limits,
                                    std::string& body);

}  // namespace rr::relay

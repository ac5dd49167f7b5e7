// The request path inside a shard: a client session reads request heads, answers
// what it can locally, and hands the rest to forward_request(), which relays one
// exchange to an upstream and streams the answer back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "inbound.hpp"
#include "ringrelay/http.hpp"
#include "ringrelay/io/task.hpp"
#include "shard.hpp"

namespace rr::relay {

struct ClientSession {
    ClientSession(Shard& s, io::Socket* sock, PeerAddress p) noexcept : shard(s), socket(sock), peer(p), in(sock) {}
    Shard& shard;
    io::Socket* socket;
    PeerAddress peer;
    Inbound in;
};

// One request in flight: its parsed head (views into the session's inbound bytes,
// valid until the head is consumed) and what the access log will need.
struct RequestContext {
    http::RequestHead head;
    char id_storage[128];
    std::string_view request_id;
    std::uint64_t start_ms = 0;
    int status = 0;                // what the client got
    std::string_view error_code;   // gateway-made errors only
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    bool response_started = false;  // a byte of the response reached the client
};

// Where and how to forward: set by the routing stage (relay mode: the one
// upstream; gateway mode: the picked channel with its credential).
struct ForwardPlan {
    std::uint32_t target = 0;
    std::string_view extra_headers;  // complete "Name: value\r\n" lines to add
    bool strip_client_auth = false;  // drop Authorization and x-api-key
    bool has_body_override = false;  // the body was read and (maybe) rewritten
    std::string_view body_override;
};

// Relays the request (head already parsed and not yet consumed) and its response.
// Returns whether the client connection may carry another request.
io::Task<bool> forward_request(ClientSession& cs, RequestContext& rc, const ForwardPlan& plan);

// Sends a response the gateway makes itself (JSON error body, X-Ringrelay-Error).
// Returns whether the connection may stay open.
io::Task<bool> send_error(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                          std::string_view message, bool keep_alive);

io::Task<void> run_client_session(Shard& shard, int fd);

}  // namespace rr::relay

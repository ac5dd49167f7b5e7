// serve_gateway: one request through the gateway stages (see gateway_path.cpp).
#pragma once

#include "ringrelay/io/task.hpp"

namespace rr::relay {

struct ClientSession;
struct RequestContext;
class ShardGateway;

// Serves the request whose head rc holds (parsed, not consumed). Returns whether
// the connection may carry another request.
io::Task<bool> serve_gateway(ClientSession& cs, RequestContext& rc, ShardGateway& sg);

}  // namespace rr::relay

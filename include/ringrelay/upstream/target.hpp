// UpstreamTarget: where requests go, parsed once from a URL ("http://host:port/prefix").
//
// A plain value that owns its strings; the pool keeps its copy (pool.hpp). Errors:
// parse_target answers false with the reason in error, never throws (but for
// std::bad_alloc).
#pragma once

#include <string>
#include <string_view>

#include "ringrelay/io/listener.hpp"

namespace rr::upstream {

struct UpstreamTarget {
    bool tls = false;
    std::string host;         // as written in the URL
    std::string host_header;  // Host value sent upstream ("host" or "host:port")
    std::string base_path;    // prefix prepended to the request path, no trailing '/'
    io::SocketAddress address;
    std::string key() const { return (tls ? "https://" : "http://") + address.to_string(); }
};

// Parses and resolves (blocking: start-up, control path or a resolver thread only).
// With resolve false only a numeric host is accepted (never blocks): a name fails
// like an unresolvable one. On failure returns false and says why in error.
bool parse_target(std::string_view url, UpstreamTarget& out, std::string& error, bool resolve = true);

}  // namespace rr::upstream

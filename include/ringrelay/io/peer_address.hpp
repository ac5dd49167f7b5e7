// PeerAddress: a connection's remote address, kept compact (an idle keep-alive
// connection holds it for its whole life) and formatted only when a log line or an
// access record needs it.
#pragma once

#include <cstdint>
#include <string>

namespace rr::io {

// The client's address, compact (an idle connection keeps it for its lifetime).
struct PeerAddress {
    std::uint8_t family = 0;  // AF_INET or AF_INET6
    std::uint8_t bytes[16] = {};
    // Appends the textual address to out.
    void append_to(std::string& out) const;
    static PeerAddress of_socket(int fd) noexcept;
};

}  // namespace rr::io

// PeerAddress: a connection's remote address, kept compact (an idle keep-alive
// connection holds it for its whole life) and formatted only when a log line or an
// access record needs it.
//
// A plain value (no pointers), copied freely. of_socket() answers an empty address
// (family 0) when getpeername fails; append_to() writes "unknown" for it. No errors
// beyond std::bad_alloc from the caller's string. Any thread.
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

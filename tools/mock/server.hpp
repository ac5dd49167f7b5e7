// One event loop of the mock: an epoll instance on its own thread with its own
// SO_REUSEPORT listener, the connections it accepted, and their timers. Nothing is
// shared with other loops except the MockState counters (see stats.hpp).
//
// Ownership: the loop owns its epoll fd and its connections; the listening socket
// and the stop eventfd belong to the caller and must outlive run().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "connection.hpp"
#include "context.hpp"

namespace rr::mock {

class Loop {
public:
    // Throws std::system_error when the epoll instance cannot be set up (start-up only).
    Loop(std::size_t index, int listen_fd, int stop_fd, MockState& state);
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // Serves until stop_fd becomes readable; then closes every connection.
    void run() noexcept;

private:
    void accept_ready() noexcept;
    void adopt(int fd) noexcept;
    Connection* find(std::uint32_t slot, std::uint32_t generation) noexcept;
    void release_if_closed(std::uint32_t slot) noexcept;
    void fire_timers() noexcept;
    void set_accepting(bool on) noexcept;

    LoopContext ctx_;
    int epoll_fd_ = -1;
    int listen_fd_;
    int stop_fd_;
    bool accepting_ = true;
    std::vector<std::unique_ptr<Connection>> connections_;  // by slot; null when free
    std::vector<std::uint32_t> generations_;                // by slot; bumped on reuse
    std::vector<std::uint32_t> free_slots_;
};

}  // namespace rr::mock

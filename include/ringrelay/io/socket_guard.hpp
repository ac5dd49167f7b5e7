// OwnedSocket: the owner's handle on a Socket made with new. Its destructor ends the
// socket (close_and_destroy), so no early return, failed step or destroyed coroutine
// frame can leak a socket or forget to close it. release() hands it on.
#pragma once

#include "ringrelay/io/socket.hpp"

namespace rr::io {

class OwnedSocket {
public:
    OwnedSocket() noexcept = default;
    explicit OwnedSocket(Socket* s) noexcept : s_(s) {}
    OwnedSocket(OwnedSocket&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    OwnedSocket& operator=(OwnedSocket&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = o.s_;
            o.s_ = nullptr;
        }
        return *this;
    }
    OwnedSocket(const OwnedSocket&) = delete;
    OwnedSocket& operator=(const OwnedSocket&) = delete;
    ~OwnedSocket() { reset(); }

    Socket* get() const noexcept { return s_; }
    Socket* operator->() const noexcept { return s_; }
    Socket& operator*() const noexcept { return *s_; }
    // Gives up ownership (the caller now ends the socket).
    Socket* release() noexcept {
        Socket* s = s_;
        s_ = nullptr;
        return s;
    }
    // Ends the socket now. The owner must not be suspended in its send()/readable().
    void reset() noexcept {
        if (s_) s_->close_and_destroy();
        s_ = nullptr;
    }

private:
    Socket* s_ = nullptr;
};

}  // namespace rr::io

// Inbound: the bytes received on one socket and not yet processed. Normally that is
// just the socket's queued buffers, viewed in place (zero copy). Only when a head
// is split across receives are the pieces copied into `carry` so the parser sees
// them contiguously; later bytes then join the carry until it is used up.
//
// Ownership: the Inbound borrows its socket (the socket's owner keeps it alive at
// least as long) and owns the carry. A view from peek() is valid until consume(),
// gather() or shrink() changes what it points into. Shard thread only. Nothing is
// reported as an error here: the socket's readable() tells EOF and failures;
// gather() may throw std::bad_alloc, like any growing string.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include "ringrelay/io/socket.hpp"

namespace rr::relay {

class Inbound {
public:
    explicit Inbound(io::Socket* s) noexcept : sock_(s) {}

    io::Socket& socket() const noexcept { return *sock_; }
    bool empty() const noexcept { return carry_.size() == carry_off_ && !sock_->has_data(); }
    bool has_carry() const noexcept { return carry_.size() != carry_off_; }

    // The oldest unprocessed bytes (the carry first, else the socket's front buffer).
    std::string_view peek() const noexcept {
        if (has_carry()) return std::string_view(carry_).substr(carry_off_);
        return sock_->front();
    }
    // Marks n <= peek().size() bytes as processed.
    void consume(std::size_t n) noexcept {
        if (has_carry()) {
            carry_off_ += n;
            if (carry_off_ == carry_.size()) {
                carry_.clear();
                carry_off_ = 0;
            }
        } else {
            sock_->consume(n);
        }
    }
    // Overwrites `bytes`, a view into peek() (an API secret in the parsed head), so the
    // buffer does not keep them once it is recycled. The memory is ours and writable
    // (the carry, a ring buffer of the shard, or the TLS session's plaintext); views
    // only hand it out as const. Bytes outside peek() are left alone.
    void wipe(std::string_view bytes) noexcept {
        const std::string_view all = peek();
        if (bytes.empty() || bytes.data() < all.data() || bytes.data() + bytes.size() > all.data() + all.size()) return;
        std::memset(const_cast<char*>(bytes.data()), 0, bytes.size());
    }
    // Copies every queued socket buffer onto the carry, so peek() sees them joined. The
    // copied-from bytes are overwritten before their buffer goes back to the pool: a
    // split head may hold a secret, and only the carry's copy is wiped after the parse.
    void gather() {
        if (carry_off_ != 0) {
            carry_.erase(0, carry_off_);
            carry_off_ = 0;
        }
        while (sock_->has_data()) {
            const std::string_view f = sock_->front();
            carry_.append(f);
            std::memset(const_cast<char*>(f.data()), 0, f.size());
            sock_->consume(f.size());
        }
    }
    // Drops the carry's memory once nothing is in it (an idle connection keeps none).
    void shrink() {
        if (!has_carry()) std::string().swap(carry_);
    }

private:
    io::Socket* sock_;
    std::string carry_;
    std::size_t carry_off_ = 0;
};

}  // namespace rr::relay

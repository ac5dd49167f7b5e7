// Listener: a shard's own listening socket (SO_REUSEPORT, so every shard binds the
// same address and the kernel spreads connections) with a multishot accept.
//
// Ownership: a Listener takes the listening fd and closes it after stop(), once the
// cancelled accept's last CQE is in; it must stay alive until closed(). Each accepted
// fd is handed to on_accept(ctx, fd), which owns it from then on. ctx is borrowed and
// must outlive the listener. Loop thread only.
//
// Errors: accept failures from lack of descriptors or memory back off for 100 ms and
// retry (logged); other accept errors re-arm at once. The start-up helpers below
// throw std::system_error (listen_socket) or answer false (parse_socket_address).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ringrelay/io/loop.hpp"

namespace rr::io {

// A parsed "host:port" / "[v6]:port" listen or connect address.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;
    const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    int family() const noexcept { return storage.ss_family; }
    std::uint16_t port() const noexcept;
    std::string to_string() const;
};

// Parses a numeric IPv4/IPv6 address with port ("127.0.0.1:8080", "[::1]:80",
// "0.0.0.0:8080", ":8080" = all IPv4). Host names are resolved with getaddrinfo
// when resolve is true (start-up only: it blocks). Returns false on bad input.
bool parse_socket_address(std::string_view text, SocketAddress& out, bool resolve = false);

// Creates, binds and listens; throws std::system_error with the address in the
// message on failure (start-up path).
int listen_socket(const SocketAddress& addr, bool reuse_port, int backlog = 4096);

class Listener : Completion {
public:
    using OnAccept = void (*)(void* ctx, int fd);
    Listener(Loop& loop, int listen_fd, OnAccept on_accept, void* ctx) noexcept;
    void start();
    // Stops accepting (the listening fd is closed once the accept is cancelled).
    void stop();
    std::uint64_t accepted() const noexcept { return accepted_; }
    // The listening socket is closed (after stop(), once the accept is cancelled).
    bool closed() const noexcept { return fd_ < 0; }

private:
    static void on_cqe(Completion* c, int res, std::uint32_t flags);
    static void on_backoff(Timer* t);
    void arm();

    struct BackoffTimer : Timer {
        explicit BackoffTimer(Listener* l) noexcept : Timer(&Listener::on_backoff), owner(l) {}
        Listener* owner;
    };
    Loop& loop_;
    int fd_;
    OnAccept on_accept_;
    void* ctx_;
    bool armed_ = false;
    bool stopped_ = false;
    std::uint64_t accepted_ = 0;
    BackoffTimer backoff_{this};
};

}  // namespace rr::io

#include "ringrelay/io/listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace rr::io {

std::uint16_t SocketAddress::port() const noexcept {
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

std::string SocketAddress::to_string() const {
    char host[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, host, sizeof host);
        std::string out = "[";  // built by append: g++ 12 warns falsely on "[" + string
        out.append(host).append("]:").append(std::to_string(port()));
        return out;
    }
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
}

bool parse_socket_address(std::string_view text, SocketAddress& out, bool resolve) {
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (host.empty()) host = "0.0.0.0";
    }
    if (port_text.empty() || port_text.size() > 5) return false;
    unsigned port = 0;
    for (char c : port_text) {
        if (c < '0' || c > '9') return false;
        port = port * 10 + unsigned(c - '0');
    }
    if (port > 65535) return false;
    out = SocketAddress{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        out.length = sizeof(sockaddr_in);
        return true;
    }
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        out.length = sizeof(sockaddr_in6);
        return true;
    }
    if (!resolve) return false;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return false;
    std::memcpy(&out.storage, res->ai_addr, res->ai_addrlen);
    out.length = res->ai_addrlen;
    freeaddrinfo(res);
    if (out.family() == AF_INET6) v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    else v4->sin_port = htons(static_cast<std::uint16_t>(port));
    return true;
}

int listen_socket(const SocketAddress& addr, bool reuse_port, int backlog) {
    const int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, addr.get(), addr.length) < 0 || listen(fd, backlog) < 0) {
        const int err = errno;
        close(fd);
        throw std::system_error(err, std::generic_category(), "listen on " + addr.to_string());
    }
    return fd;
}

// A listener counts as a live socket of its loop until its fd is closed, so a
// shutdown waits for the cancelled accept's last CQE.
Listener::Listener(Loop& loop, int listen_fd, OnAccept on_accept, void* ctx) noexcept
    : Completion(&Listener::on_cqe), loop_(loop), fd_(listen_fd), on_accept_(on_accept), ctx_(ctx) {
    loop_.socket_opened();
}

void Listener::start() { arm(); }

void Listener::arm() {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_multishot_accept(s, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data(s, static_cast<Completion*>(this));
    armed_ = true;
}

void Listener::stop() {
    if (stopped_) return;
    stopped_ = true;
    loop_.timers().cancel(backoff_);
    if (armed_) {
        loop_.cancel(this);
    } else {
        close(fd_);
        fd_ = -1;
        loop_.socket_closed();
    }
}

void Listener::on_cqe(Completion* c, int res, std::uint32_t flags) {
    auto* self = static_cast<Listener*>(c);
    if (res >= 0) {
        if (self->stopped_) {
            close(res);
        } else {
            ++self->accepted_;
            self->on_accept_(self->ctx_, res);
        }
    }
    if (flags & IORING_CQE_F_MORE) return;
    self->armed_ = false;
    if (self->stopped_) {
        close(self->fd_);
        self->fd_ = -1;
        self->loop_.socket_closed();
        return;
    }
    if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
        // Out of descriptors: accepting again at once would spin. Back off briefly;
        // connections wait in the backlog meanwhile.
        std::fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"accept failed, backing off\",\"error\":\"%s\"}\n",
                     std::strerror(-res));
        self->loop_.timers().arm(self->backoff_, self->loop_.now_ms() + 100);
        return;
    }
    self->arm();
}

void Listener::on_backoff(Timer* t) {
    Listener* self = static_cast<BackoffTimer*>(t)->owner;
    if (!self->stopped_) self->arm();
}

}  // namespace rr::io

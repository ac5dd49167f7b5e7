// A connected TCP pair on 127.0.0.1 for unit tests that drive real sockets through the
// ring: {server side, client side}. The server side is always non-blocking (the ring
// reads it); how the client side behaves is the test's choice.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace rr::test {

struct ClientEnd {
    bool nonblocking = false;  // for a second ring; blocking for a test thread
    bool nodelay = false;      // so small writes from the test arrive as written
};

inline std::pair<int, int> tcp_pair(ClientEnd end = {}) {
    const int lfd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(lfd, 4) == 0);
    socklen_t len = sizeof a;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    const int client = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const int server = accept(lfd, nullptr, nullptr);
    close(lfd);
    fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK);
    if (end.nonblocking) fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK);
    if (end.nodelay) {
        const int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return {server, client};
}

}  // namespace rr::test

#include "ringrelay/io/peer_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace rr::io {

void PeerAddress::append_to(std::string& out) const {
    if (family == AF_INET) {  // by hand: inet_ntop formats IPv4 with sprintf, per request
        char text[16];
        char* p = text;
        for (int i = 0; i < 4; ++i) {
            unsigned v = bytes[i];
            if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
            if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
            *p++ = static_cast<char>('0' + v % 10);
            if (i < 3) *p++ = '.';
        }
        out.append(text, static_cast<std::size_t>(p - text));
        return;
    }
    char text[INET6_ADDRSTRLEN] = "unknown";
    if (family == AF_INET || family == AF_INET6) inet_ntop(family, bytes, text, sizeof text);
    out.append(text);
}

PeerAddress PeerAddress::of_socket(int fd) noexcept {
    PeerAddress p;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
    if (ss.ss_family == AF_INET) {
        p.family = AF_INET;
        std::memcpy(p.bytes, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        p.family = AF_INET6;
        std::memcpy(p.bytes, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
    }
    return p;
}

}  // namespace rr::io

// Where the admin listener may listen. Its requests carry the admin bearer token and
// may carry upstream credentials (?reveal=true): off loopback they need TLS, or the
// operator's explicit --admin-insecure (logged as a warning at every start).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "ringrelay/admin/admin.hpp"
#include "ringrelay/io/listener.hpp"
#include "ringrelay/relay/settings.hpp"

namespace rr::admin {

bool is_loopback(const io::SocketAddress& addr) noexcept {
    if (addr.family() == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr.storage);
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;  // 127.0.0.0/8
    }
    if (addr.family() == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&addr.storage)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
        return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;  // ::ffff:127.x.y.z
    }
    return false;
}

AdminExposure admin_exposure(const relay::ServeSettings& st, const io::SocketAddress& addr, std::string& error) {
    if (is_loopback(addr)) return AdminExposure::loopback;
    if (!st.admin_tls_cert.empty()) return AdminExposure::tls;
    if (st.admin_insecure) return AdminExposure::insecure;
    error = "serve: --admin-listen " + st.admin_listen +
            " is not a loopback address, and the admin token and ?reveal=true credentials would cross the "
            "network in clear text: give --admin-tls-cert and --admin-tls-key, listen on 127.0.0.1, or pass "
            "--admin-insecure to accept clear text";
    return AdminExposure::refused;
}

}  // namespace rr::admin

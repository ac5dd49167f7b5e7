// The admin listener's request handling (REFERENCE.md section 5): health, /metrics,
// /admin/state and the management API for keys, channels and blocks. It runs on
// shard 0, on connections accepted by the admin listener; serve_request() hands
// such requests to serve_admin() instead of the gateway path.
#pragma once

#include <functional>
#include <string>

#include "ringrelay/io/task.hpp"

namespace rr::obs {
class Metrics;
}
namespace rr::io {
struct SocketAddress;
class TlsServerContext;
}

namespace rr::relay {

struct ClientSession;
struct RequestContext;
struct GatewayShared;
struct ServeSettings;
class BlockingWorker;

struct AdminContext {
    std::string token;                  // bearer token; compared in constant time
    const ServeSettings* settings = nullptr;
    GatewayShared* gateway = nullptr;   // null in relay mode (key/channel endpoints answer 404)
    obs::Metrics* metrics = nullptr;    // render() for /metrics, totals() for /admin/state
    BlockingWorker* worker = nullptr;   // LMDB writes and backups run there, never on a shard
    const io::TlsServerContext* tls = nullptr;  // --admin-tls-cert: the admin listener serves TLS
};

// How the admin listener is exposed (admin_listen.cpp): on loopback, off it with TLS,
// off it in clear text because the operator said --admin-insecure, or refused (error
// says why and what to do; serve exits 2).
enum class AdminExposure { loopback, tls, insecure, refused };
AdminExposure admin_exposure(const ServeSettings& st, const io::SocketAddress& addr, std::string& error);
bool is_loopback(const io::SocketAddress& addr) noexcept;

// Serves the admin request whose head rc holds (parsed, not consumed). Returns
// whether the connection may carry another request.
io::Task<bool> serve_admin(ClientSession& cs, RequestContext& rc, AdminContext& admin);

// Loads $RINGRELAY_ADMIN_TOKEN, else DATA/admin.token, creating it (mode 0600, a
// random token from wolfSSL's RNG) on first start. Start-up path: throws
// std::runtime_error with a clear message on failure.
std::string load_or_create_admin_token(const std::string& data_dir);

}  // namespace rr::relay

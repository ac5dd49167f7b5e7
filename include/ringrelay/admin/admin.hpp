// The admin listener's request handling (REFERENCE.md section 5): health, /metrics,
// /admin/state and the management API for keys, channels and blocks. It runs on
// shard 0, on connections accepted by the admin listener; serve_request() hands
// such requests to serve_admin() instead of the gateway path.
//
// Ownership: the server owns the AdminContext and everything it points at (settings,
// gateway state, metrics, worker, TLS context), all of which outlive the shard's
// loop; the context owns its token. serve_admin() borrows the session and request
// context like any handler and runs on shard 0; what touches LMDB runs on the
// worker thread while the request's coroutine waits.
//
// Errors: a bad request, a refused token or a failed store call is an HTTP answer
// (the JSON error body of REFERENCE.md), never an exception on the request path; the
// start-up helpers throw std::runtime_error or fill `error` (admin_exposure).
#pragma once

#include <functional>
#include <string>

#include "ringrelay/io/blocking_worker.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/relay/settings.hpp"
#include "ringrelay/relay/shard.hpp"

namespace rr::obs {
class Metrics;
}
namespace rr::gateway {
struct GatewayShared;
}
namespace rr::io {
struct SocketAddress;
class TlsServerContext;
}

namespace rr::admin {

// The admin listener's RequestHandler (shard 0), and what its endpoints reach.
struct AdminContext final : relay::RequestHandler {
    io::Task<bool> serve(relay::ClientSession& cs, relay::RequestContext& rc) override;

    std::string token;                  // bearer token; compared in constant time
    const relay::ServeSettings* settings = nullptr;
    gateway::GatewayShared* gateway = nullptr;   // null in relay mode (key/channel endpoints answer 404)
    obs::Metrics* metrics = nullptr;    // render() for /metrics, totals() for /admin/state
    io::BlockingWorker* worker = nullptr;   // LMDB writes and backups run there, never on a shard
    const io::TlsServerContext* tls = nullptr;  // --admin-tls-cert: the admin listener serves TLS
};

// How the admin listener is exposed (admin_listen.cpp): on loopback, off it with TLS,
// off it in clear text because the operator said --admin-insecure, or refused (error
// says why and what to do; serve exits 2).
enum class AdminExposure { loopback, tls, insecure, refused };
AdminExposure admin_exposure(const relay::ServeSettings& st, const io::SocketAddress& addr, std::string& error);
bool is_loopback(const io::SocketAddress& addr) noexcept;

// Serves the admin request whose head rc holds (parsed, not consumed). Returns
// whether the connection may carry another request.
io::Task<bool> serve_admin(relay::ClientSession& cs, relay::RequestContext& rc, AdminContext& admin);

// Loads $RINGRELAY_ADMIN_TOKEN, else DATA/admin.token, creating it (mode 0600, a
// random token from wolfSSL's RNG) on first start. Start-up path: throws
// std::runtime_error with a clear message on failure.
std::string load_or_create_admin_token(const std::string& data_dir);

}  // namespace rr::admin

// A client connection's life: wait for a request, serve it, repeat while
// keep-alive allows. The session's own frame stays small (an idle keep-alive
// connection costs only this frame and its Socket); each request's state lives in
// serve_request()'s frame, which the frame allocator recycles.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringrelay/relay/early_stream.hpp"
#include "ringrelay/relay/request_log.hpp"
#include "ringrelay/obs/metrics.hpp"
#include "ringrelay/relay/head_reader.hpp"
#include "ringrelay/relay/replies.hpp"
#include "ringrelay/relay/rewrite.hpp"
#include "ringrelay/io/socket_guard.hpp"
#include "ringrelay/io/tls.hpp"
#include "ringrelay/obs/log.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::relay {
namespace {

std::string_view error_code_for(http::Error e) noexcept {
    switch (e) {
    case http::Error::uri_too_long: return "uri_too_long";
    case http::Error::header_too_large: return "header_too_large";
    case http::Error::version_not_supported: return "version_not_supported";
    case http::Error::not_implemented: return "not_implemented";
    case http::Error::body_too_large: return "body_too_large";
    default: return "bad_request";
    }
}

void assign_request_id(RequestContext& rc, Shard& shard) {
    const std::string_view given = rc.head.x_request_id;
    if (acceptable_request_id(given)) {
        given.copy(rc.id_storage, given.size());
        rc.request_id = std::string_view(rc.id_storage, given.size());
    } else {
        shard.request_ids().next(rc.id_storage);
        rc.request_id = std::string_view(rc.id_storage, 32);
    }
}

// GET /healthz: alive. Answered by the shard itself, no key needed.
// The admin path logs method and target only (it forwards nothing upstream).
void capture_request_line(RequestContext& rc) {
    rc.captured.line.assign(rc.head.method).append(" ").append(rc.head.target);
    rc.captured.method_len = rc.head.method.size();
}

bool is_healthz(const http::RequestHead& h) noexcept {
    return h.path == "/healthz" && (h.method == "GET" || h.method == "HEAD");
}

io::Task<bool> serve_local(ClientSession& cs, RequestContext& rc) {
    const bool keep = rc.head.keep_alive && rc.head.body == http::BodyKind::none;
    consume_head(cs, rc);
    co_return co_await send_json(cs, rc, 200, "{\"status\":\"ok\"}", keep);
}

// Reads one request head and routes the request. Returns whether the
// connection may carry another request.
io::Task<bool> handle_request(ClientSession& cs, RequestContext& rc) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    rc.start_ms = shard.loop().now_ms();
    rc.start_ns = monotonic_ns();
    const http::Limits limits{};
    const HeadRead hr = co_await read_head(
        cs.in, [&](std::string_view b) { return http::parse_request(b, rc.head, limits); },
        rc.start_ms + st.header_timeout_ms);
    switch (hr.outcome) {
    case HeadOutcome::complete:
        break;
    case HeadOutcome::timeout:
        shard.request_ids().next(rc.id_storage);
        rc.request_id = std::string_view(rc.id_storage, 32);
        if (hr.got_bytes) co_await send_error(cs, rc, 408, "request_timeout", "request header not received in time", false);
        co_return false;
    case HeadOutcome::parse_error:
        shard.request_ids().next(rc.id_storage);
        rc.request_id = std::string_view(rc.id_storage, 32);
        co_await send_error(cs, rc, http::status_for(hr.error), error_code_for(hr.error),
                            http::message_for(hr.error), false);
        co_return false;
    case HeadOutcome::closed:
    case HeadOutcome::failed:
        co_return false;
    }
    ++shard.counters().requests;
    assign_request_id(rc, shard);
    if (shard.draining()) {
        consume_head(cs, rc);
        co_return co_await send_error(cs, rc, 503, "shutting_down", "server is shutting down", false);
    }
    if (cs.admin) {
        rc.captured.line = shard.buffers().take();
        capture_request_line(rc);
        co_return co_await shard.admin()->serve(cs, rc);
    }
    if (is_healthz(rc.head)) {
        rc.captured.line = shard.buffers().take();
        capture_request_line(rc);
        co_return co_await serve_local(cs, rc);
    }

    // The captured head lives in pooled strings: no allocation per request.
    rc.captured.line = shard.buffers().take();
    rc.captured.fields = shard.buffers().take();
    bool keep_alive;
    if (RequestHandler* handler = shard.handler()) {
        keep_alive = co_await handler->serve(cs, rc);
    } else {
        capture_head(cs, rc, /*strip_client_auth=*/false, /*replace_body=*/false);
        ForwardPlan plan;
        plan.target = shard.relay_target();
        keep_alive = (co_await forward_request(cs, rc, plan)).keep_alive;
    }
    co_return keep_alive;
}

// One request, then its access-log record and metrics. The captured head lives in
// pooled strings, handed back here.
io::Task<bool> serve_request(ClientSession& cs) {
    Shard& shard = cs.shard;
    RequestContext rc;
    const bool keep_alive = co_await handle_request(cs, rc);
    finish_request(shard.obs(), rc, monotonic_ns());
    if (rc.captured.line.capacity()) shard.buffers().give(std::move(rc.captured.line));
    if (rc.captured.fields.capacity()) shard.buffers().give(std::move(rc.captured.fields));
    if (obs::ShardMetrics* m = shard.obs().metrics) {
        m->set_io_counters(shard.loop().stats().enobufs, shard.loop().stats().cq_overflows);
        m->set_recv_buffer_counters(shard.loop().stats().recv_spills, shard.loop().buffers().in_use());
    }
    co_return keep_alive;
}

// The session's place in the shard's list (drain finds it there) and its count in
// the shard's open connections, for as long as the session lives.
class SessionRegistration {
public:
    explicit SessionRegistration(ClientSession& cs) noexcept : cs_(cs) { cs.shard.register_session(cs); }
    ~SessionRegistration() {
        Shard& shard = cs_.shard;
        --shard.counters().connections_active;
        if (obs::ShardMetrics* m = shard.obs().metrics) m->connection_closed();
        shard.unregister_session(cs_);
    }
    SessionRegistration(const SessionRegistration&) = delete;
    SessionRegistration& operator=(const SessionRegistration&) = delete;

private:
    ClientSession& cs_;
};

// Between the first byte of a request and its answer (a drain waits for these).
class RequestInFlight {
public:
    explicit RequestInFlight(Shard& shard) noexcept : shard_(shard) { shard.request_started(); }
    ~RequestInFlight() { shard_.request_ended(); }
    RequestInFlight(const RequestInFlight&) = delete;
    RequestInFlight& operator=(const RequestInFlight&) = delete;

private:
    Shard& shard_;
};

}  // namespace

io::Task<bool> send_error(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                          std::string_view message, bool keep_alive, std::string_view extra_headers) {
    Shard& shard = cs.shard;
    if (rc.stream_started()) co_return co_await end_stream_with_error(cs, rc, status, code, message);
    keep_alive = keep_alive && !shard.draining();
    std::string out = shard.buffers().take();
    append_error_response(out, status, code, message, rc.request_id, keep_alive, extra_headers);
    rc.status = status;
    rc.error_code = code;
    co_return co_await send_response(cs, rc, out, keep_alive);
}

io::Task<bool> send_json(ClientSession& cs, RequestContext& rc, int status, std::string_view body, bool keep_alive) {
    keep_alive = keep_alive && !cs.shard.draining();
    std::string out = cs.shard.buffers().take();
    append_json_response(out, status, body, rc.request_id, keep_alive);
    rc.status = status;
    co_return co_await send_response(cs, rc, out, keep_alive);
}

io::Task<bool> send_response(ClientSession& cs, RequestContext& rc, std::string& out, bool keep_alive) {
    Shard& shard = cs.shard;
    const int s = co_await cs.socket->send(out, shard.loop().now_ms() + shard.settings().stream_idle_timeout_ms);
    rc.bytes_out += out.size();
    shard.buffers().give(std::move(out));
    co_return keep_alive && s == 0;
}

// Serving TLS: the handshake comes first, within the header timeout. A client that
// fails it is closed without a word (there is no channel to answer on); debug
// logging says why.
io::Task<bool> accept_tls(ClientSession& cs, std::uint64_t deadline_ms) {
    const int rc = co_await io::tls_handshake(*cs.socket, deadline_ms);
    if (rc < 0 && obs::log_enabled(obs::Level::debug)) {
        std::string peer;
        cs.peer.append_to(peer);
        obs::log(obs::Level::debug, "TLS handshake failed",
                 {{"peer", peer}, {"shard", cs.shard.index()}, {"reason", cs.socket->tls()->error_text()}});
    }
    co_return rc == 0;
}

io::Detached run_client_session(Shard& shard, int fd, bool admin) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::unique_ptr<io::TlsSession> tls;
    // The admin listener has its own certificate (--admin-tls-cert), or none.
    const io::TlsServerContext* server_tls =
        admin ? shard.admin_tls() : shard.server_tls();
    if (server_tls != nullptr) {
        tls = io::TlsSession::server(*server_tls);
        if (!tls) {  // out of memory: refuse this connection rather than serve it in plain
            ::close(fd);
            co_return;
        }
    }
    // Guards, destroyed in reverse order on every way out: the session leaves the
    // shard's list, then its socket is closed.
    io::OwnedSocket socket(new io::Socket(shard.loop(), fd));
    ClientSession cs(shard, socket.get(), PeerAddress::of_socket(fd));
    cs.admin = admin;
    if (tls) socket->attach_tls(std::move(tls));
    socket->start_receiving();
    ShardCounters& counters = shard.counters();
    ++counters.connections_accepted;
    ++counters.connections_active;
    if (obs::ShardMetrics* m = shard.obs().metrics) m->connection_opened();
    const SessionRegistration registered(cs);

    std::uint64_t idle_deadline = shard.loop().now_ms() + shard.settings().header_timeout_ms;
    const bool open = socket->tls() == nullptr || co_await accept_tls(cs, idle_deadline);
    while (open) {
        if (cs.in.empty()) {
            if (shard.draining()) break;
            const int state = co_await socket->readable(idle_deadline);
            if (state != io::Socket::kData) break;  // closed, failed, cut or idle too long: no answer owed
        }
        bool keep_alive;
        {
            const RequestInFlight in_flight(shard);
            keep_alive = co_await serve_request(cs);
        }
        if (!keep_alive) break;
        cs.in.shrink();
        idle_deadline = shard.loop().now_ms() + shard.settings().keepalive_timeout_ms;
    }
}

}  // namespace rr::relay

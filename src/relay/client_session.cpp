// A client connection's life: wait for a request, serve it, repeat while
// keep-alive allows. The session's own frame stays small (an idle keep-alive
// connection costs only this frame and its Socket); each request's state lives in
// serve_request()'s frame, which the frame allocator recycles.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "head_reader.hpp"
#include "replies.hpp"
#include "rewrite.hpp"
#include "session.hpp"

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

// Answers requests the gateway serves itself; nullopt-like false when the
// request is not one of them.
bool is_local_route(const http::RequestHead& h) noexcept {
    return h.path == "/healthz" && (h.method == "GET" || h.method == "HEAD");
}

io::Task<bool> serve_local(ClientSession& cs, RequestContext& rc) {
    const bool keep = rc.head.keep_alive && rc.head.body == http::BodyKind::none && !cs.shard.draining();
    cs.in.consume(rc.head.head_length);
    std::string out = cs.shard.buffers().take();
    append_json_response(out, 200, "{\"status\":\"ok\"}", rc.request_id, keep);
    rc.status = 200;
    const int s = co_await cs.socket->send(out, cs.shard.loop().now_ms() + cs.shard.settings().stream_idle_timeout_ms);
    rc.bytes_out += out.size();
    cs.shard.buffers().give(std::move(out));
    co_return keep && s == 0;
}

// Reads one request head and routes the request. Returns whether the
// connection may carry another request.
io::Task<bool> serve_request(ClientSession& cs) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    RequestContext rc;
    rc.start_ms = shard.loop().now_ms();
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
        cs.in.consume(rc.head.head_length);
        co_return co_await send_error(cs, rc, 503, "shutting_down", "server is shutting down", false);
    }
    if (is_local_route(rc.head)) co_return co_await serve_local(cs, rc);

    ForwardPlan plan;
    plan.target = shard.relay_target();
    co_return co_await forward_request(cs, rc, plan);
}

}  // namespace

io::Task<bool> send_error(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                          std::string_view message, bool keep_alive) {
    Shard& shard = cs.shard;
    keep_alive = keep_alive && !shard.draining();
    std::string out = shard.buffers().take();
    append_error_response(out, status, code, message, rc.request_id, keep_alive);
    rc.status = status;
    rc.error_code = code;
    const int s = co_await cs.socket->send(out, shard.loop().now_ms() + shard.settings().stream_idle_timeout_ms);
    rc.bytes_out += out.size();
    shard.buffers().give(std::move(out));
    co_return keep_alive && s == 0;
}

io::Task<void> run_client_session(Shard& shard, int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* socket = new io::Socket(shard.loop(), fd);
    ClientSession cs(shard, socket, PeerAddress::of_socket(fd));
    socket->start_receiving();
    ShardCounters& counters = shard.counters();
    ++counters.connections_accepted;
    ++counters.connections_active;

    std::uint64_t idle_deadline = shard.loop().now_ms() + shard.settings().header_timeout_ms;
    for (;;) {
        if (cs.in.empty()) {
            if (shard.draining()) break;
            const int state = co_await socket->readable(idle_deadline);
            if (state != io::Socket::kData) break;  // closed, failed, or idle too long: no answer owed
        }
        if (!co_await serve_request(cs)) break;
        cs.in.shrink();
        idle_deadline = shard.loop().now_ms() + shard.settings().keepalive_timeout_ms;
    }
    --counters.connections_active;
    socket->close_and_destroy();
}

}  // namespace rr::relay

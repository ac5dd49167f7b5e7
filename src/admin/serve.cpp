// serve_admin: one request on the admin listener. The head is routed and the token
// checked before any body byte is read; the body is read whole (admin bodies are
// small); the handler's Action runs here or on the io::BlockingWorker; the Reply goes
// out with the gateway's JSON error shape for errors (X-Ringrelay-Error).
#include "ringrelay/admin/admin.hpp"

#include "api.hpp"
#include "ringrelay/io/blocking_worker.hpp"
#include "ringrelay/relay/body_tracker.hpp"
#include "ringrelay/relay/replies.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::admin {

// Here the admin API meets relay's session: reading the body, sending the reply.
using relay::append_json_response;
using relay::BodyTracker;
using relay::Shard;
namespace {

// Larger admin bodies get 413: the biggest real one is a channel with a long model list.
constexpr std::uint64_t kMaxAdminBody = 1u << 20;

// The framing facts of the head, kept before the head is consumed.
void note_framing(RequestContext& rc) noexcept {
    rc.body_kind = rc.head.body;
    rc.content_length = rc.head.content_length;
    rc.version_minor = rc.head.version_minor;
    rc.keep_alive = rc.head.keep_alive;
    rc.expect_continue = rc.head.expect_continue;
    rc.is_head = http::method_of(rc.head.method) == http::Method::head;
}

// Why the request is answered without reading its body: no token, no such route,
// wrong method. nullopt when it may go on.
std::optional<Reply> refusal(const Route& route, AdminContext& admin, std::string_view authorization,
                                    std::string_view path) {
    if (route.needs_token && !token_matches(bearer_token(authorization), admin.token))
        return Reply::error(401, "invalid_admin_token",
                                   "missing or wrong admin token: send Authorization: Bearer <token> "
                                   "($RINGRELAY_ADMIN_TOKEN or DATA/admin.token)");
    if (route.outcome == Route::not_found)
        return Reply::error(404, "not_found", cat("no admin route for ", path));
    if (route.outcome == Route::method_not_allowed) {
        Reply r = Reply::error(405, "method_not_allowed", cat(path, " takes ", route.allow));
        r.extra_headers = cat("Allow: ", route.allow, "\r\n");
        return r;
    }
    return std::nullopt;
}

enum class BodyEnd { complete, refused, client_gone };

// Reads the whole request body into body; on refused, why says what to answer.
io::Task<BodyEnd> read_admin_body(ClientSession& cs, RequestContext& rc, std::string& body, Reply& why) {
    io::Loop& loop = cs.shard.loop();
    const std::uint64_t idle_ms = cs.shard.settings().header_timeout_ms;
    if (rc.body_kind == http::BodyKind::content_length && rc.content_length > kMaxAdminBody) {
        why = Reply::error(413, "body_too_large", "admin request bodies are limited to 1 MiB");
        co_return BodyEnd::refused;
    }
    BodyTracker tracker(rc.body_kind, rc.content_length, kMaxAdminBody);
    if (!tracker.done() && rc.expect_continue && cs.in.empty() &&
        co_await cs.socket->send("HTTP/1.1 100 Continue\r\n\r\n", loop.now_ms() + idle_ms) < 0)
        co_return BodyEnd::client_gone;
    while (!tracker.done()) {
        if (cs.in.empty()) {
            const int r = co_await cs.socket->readable(loop.now_ms() + idle_ms);
            if (r == -ETIMEDOUT) {
                why = Reply::error(408, "request_timeout", "request body not received in time");
                co_return BodyEnd::refused;
            }
            if (r != io::Socket::kData) co_return BodyEnd::client_gone;
        }
        const std::size_t n = tracker.measure(cs.in.peek(), &body);
        if (const http::Error e = tracker.error(); e != http::Error::none) {
            const std::string_view code = e == http::Error::body_too_large ? "body_too_large" : "bad_request";
            why = Reply::error(http::status_for(e), code, std::string(http::message_for(e)));
            co_return BodyEnd::refused;
        }
        cs.in.consume(n);
        rc.bytes_in += n;
    }
    co_return BodyEnd::complete;
}

// Runs the handler: at once, or on the worker (LMDB), resumed here on the shard.
io::Task<Reply> run_handler(ClientSession& cs, AdminContext& admin, const Request& req) {
    Action action = plan_admin(req, admin);
    if (action.now) co_return std::move(*action.now);
    if (admin.worker == nullptr) co_return Reply::error(503, "unavailable", "the admin worker is not running");
    Reply reply;
    std::function<void()> fn = [&reply, &action] { reply = action.job(); };
    io::BlockingWorker::Job job = admin.worker->run(cs.shard.loop(), std::move(fn));
    co_await job;
    co_return reply;
}

io::Task<bool> send_reply(ClientSession& cs, RequestContext& rc, const Reply& reply, bool keep_alive) {
    // send_error always sends its body: after a HEAD the connection cannot go on.
    if (reply.is_error())
        co_return co_await send_error(cs, rc, reply.status, reply.error_code, reply.message, keep_alive && !rc.is_head,
                                      reply.extra_headers);
    Shard& shard = cs.shard;
    keep_alive = keep_alive && !shard.draining();
    std::string out = shard.buffers().take();
    append_json_response(out, reply.status, reply.body, rc.request_id, keep_alive, reply.extra_headers);
    if (reply.content_type != "application/json") {  // /metrics: the same head, another type
        static constexpr std::string_view kJsonType = "Content-Type: application/json";
        out.replace(out.find(kJsonType), kJsonType.size(), cat("Content-Type: ", reply.content_type));
    }
    if (rc.is_head) out.resize(out.size() - reply.body.size());
    rc.status = reply.status;
    const int s = co_await cs.socket->send(out, shard.loop().now_ms() + shard.settings().stream_idle_timeout_ms);
    rc.bytes_out += out.size();
    shard.buffers().give(std::move(out));
    co_return keep_alive && s == 0;
}

}  // namespace

// NOTE: as in gateway_path.cpp, arguments of coroutine calls here are named locals,
// never temporaries with destructors (g++ 12 destroys those twice).
io::Task<bool> serve_admin(ClientSession& cs, RequestContext& rc, AdminContext& admin) {
    const Route route = route_admin(rc.head.method, rc.head.path);
    std::optional<Reply> refused = refusal(route, admin, rc.head.authorization, rc.head.path);
    Request req;
    req.endpoint = route.endpoint;
    req.id.assign(route.id);  // a view into the head: copied before the head goes
    req.query.assign(rc.head.query);
    req.now_ms = now_unix_ms();
    note_framing(rc);
    consume_head(cs, rc);

    Reply reply;
    bool body_read = rc.body_kind == http::BodyKind::none;
    if (refused) {
        reply = std::move(*refused);
    } else {
        const BodyEnd end = co_await read_admin_body(cs, rc, req.body, reply);
        if (end == BodyEnd::client_gone) co_return false;
        body_read = end == BodyEnd::complete;
        if (body_read) reply = co_await run_handler(cs, admin, req);
    }
    co_return co_await send_reply(cs, rc, reply, rc.keep_alive && body_read);
}

io::Task<bool> AdminContext::serve(ClientSession& cs, RequestContext& rc) { return serve_admin(cs, rc, *this); }

}  // namespace rr::admin

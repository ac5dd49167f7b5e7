// serve_admin: one request on the admin listener. The head is routed and the token
// checked before any body byte is read; the body is read whole (admin bodies are
// small); the handler's Action runs here or on the io::BlockingWorker; the Reply goes
// out with the gateway's JSON error shape for errors (X-Ringrelay-Error).
#include "ringrelay/admin/admin.hpp"

#include "api.hpp"
#include "ringrelay/io/blocking_worker.hpp"
#include "ringrelay/relay/whole_body.hpp"
#include "ringrelay/relay/replies.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::admin {

// Here the admin API meets relay's session: reading the body, sending the reply.
using relay::append_json_response;
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
    co_return co_await send_response(cs, rc, out, keep_alive);
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
        // Bodies wait no longer than heads do: the admin API is no streaming client.
        const relay::WholeBodyLimits limits{kMaxAdminBody, cs.shard.settings().header_timeout_ms,
                                            "admin request bodies are limited to 1 MiB"};
        const relay::WholeBody body = co_await relay::read_whole_body(cs, rc, limits, req.body);
        if (body.kind == relay::WholeBody::client_gone) co_return false;
        body_read = body.kind == relay::WholeBody::complete;
        if (body_read) reply = co_await run_handler(cs, admin, req);
        else reply = Reply::error(body.status, body.code, body.message);
    }
    co_return co_await send_reply(cs, rc, reply, rc.keep_alive && body_read);
}

io::Task<bool> AdminContext::serve(ClientSession& cs, RequestContext& rc) { return serve_admin(cs, rc, *this); }

}  // namespace rr::admin

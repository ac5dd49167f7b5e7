// Stage 1, admit: which route the head asks for, and the presented secret, hashed.
#include "path.hpp"
#include "ringrelay/obs/log.hpp"

namespace rr::gateway {
namespace {

constexpr std::string_view kResponses = "/v1/responses";

// The {id} of /v1/responses/{id}[/input_items|/cancel] asked with the method that
// path takes, or empty.
std::string_view response_id_of(std::string_view path, http::Method m) noexcept {
    if (!path.starts_with(kResponses) || path.size() <= kResponses.size() + 1 || path[kResponses.size()] != '/')
        return {};
    std::string_view rest = path.substr(kResponses.size() + 1);
    const std::size_t slash = rest.find('/');
    const std::string_view id = rest.substr(0, slash);
    const std::string_view tail = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    const bool fits = (tail.empty() && (m == http::Method::get || m == http::Method::del)) ||
                      (tail == "/input_items" && m == http::Method::get) || (tail == "/cancel" && m == http::Method::post);
    return fits ? id : std::string_view();
}

Route route_of(const http::RequestHead& h) noexcept {
    const http::Method m = http::method_of(h.method);
    if (h.path == "/readyz" && (m == http::Method::get || m == http::Method::head)) return Route::readyz;
    if (h.path == "/v1/models" && m == http::Method::get) return Route::models;
    if (h.path == "/v1/messages/count_tokens" && m == http::Method::post) return Route::count_tokens;
    if (!response_id_of(h.path, m).empty()) return Route::response_by_id;
    if (h.path.starts_with("/v1/")) return Route::relay;
    return Route::not_found;
}

// The secret from "Authorization: Bearer <secret>" or "x-api-key: <secret>".
std::string_view presented_secret(const http::RequestHead& h) noexcept {
    std::string_view v = h.authorization;
    if (v.size() > 7 && http::iequals(v.substr(0, 7), "bearer ")) {
        v.remove_prefix(7);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        return v;
    }
    return h.x_api_key;
}

}  // namespace

Outcome admit(GatewayRequest& req) {
    relay::RequestContext& rc = req.rc;
    req.route = route_of(rc.head);
    const std::string_view secret = presented_secret(rc.head);
    if (!secret.empty()) req.secret_hash = store::hash_secret(secret);
    read_session_header(req);
    // Only the digest outlives this line: the secret's bytes in the receive buffer (a
    // pooled ring buffer, the TLS plaintext or the head's carry) are overwritten, so no
    // buffer handed to the next request or connection holds a client's live key.
    req.cs.in.wipe(secret);
    // Everything after this works on owned copies: the head's views die here.
    relay::capture_head(req.cs, rc, /*strip_client_auth=*/true, /*replace_body=*/true);
    if (req.route == Route::not_found) req.path.assign(rc.head.path);
    if (req.route == Route::response_by_id) req.response_id.assign(response_id_of(rc.head.path, http::method_of(rc.head.method)));
    req.creates_response = rc.head.path == kResponses && http::method_of(rc.head.method) == http::Method::post;
    relay::consume_head(req.cs, rc);
    if (req.route == Route::not_found) return req.reject_with(404, "not_found", "no route for " + req.path, false);
    return Outcome::proceed();
}

io::Task<Outcome> answer_readyz(GatewayRequest& req) {
    bool ready = false;
    {
        store::ReadScope scope(req.sg.reader());
        ready = scope.ok() && req.sg.reader().has_enabled_channel();
    }
    const bool keep = req.rc.keep_alive && req.rc.body_kind == http::BodyKind::none;
    const std::string_view body = ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\",\"reason\":\"no enabled channel\"}";
    co_return Outcome::finished(co_await relay::send_json(req.cs, req.rc, ready ? 200 : 503, body, keep));
}

io::Task<Outcome> answer_models(GatewayRequest& req) {
    std::string body = "{\"object\":\"list\",\"data\":[";
    bool first = true;
    {
        store::ReadScope scope(req.sg.reader());
        if (scope.ok()) {
            req.sg.reader().for_each_model_in_group(req.key.group, [&](std::string_view model) {
                if (!req.key.allows(model)) return;
                if (!first) body += ',';
                first = false;
                body += "{\"id\":\"";
                obs::append_json_escaped(body, model);
                body += "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"ringrelay\"}";
            });
        }
    }
    body += "]}";
    const bool keep = req.rc.keep_alive && req.rc.body_kind == http::BodyKind::none;
    co_return Outcome::finished(co_await relay::send_json(req.cs, req.rc, 200, body, keep));
}

}  // namespace rr::gateway

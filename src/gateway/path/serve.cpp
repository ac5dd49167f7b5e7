// ShardGateway::serve: the driver of the gateway's request path (see path.hpp).
#include <string>

#include "path.hpp"

namespace rr::gateway {
namespace {

// Sends what a rejecting stage decided. An unread body would be taken for the next
// request, so then the connection closes.
io::Task<bool> send_rejection(GatewayRequest& req, const Outcome& o) {
    relay::RequestContext& rc = req.rc;
    const bool keep = rc.keep_alive && (o.body_read || rc.body_kind == http::BodyKind::none);
    const std::string header = o.retry_after_s ? "Retry-After: " + std::to_string(o.retry_after_s) + "\r\n" : "";
    co_return co_await relay::send_error(req.cs, rc, o.status, o.code, o.message, keep, header);
}

}  // namespace

io::Task<bool> ShardGateway::serve(relay::ClientSession& cs, relay::RequestContext& rc) {
    GatewayRequest req(*this, cs, rc);
    Outcome o = admit(req);
    if (o.goes_on() && req.route == Route::readyz) o = co_await answer_readyz(req);
    if (o.goes_on()) o = authorize(req);
    if (o.goes_on() && req.route == Route::models) o = co_await answer_models(req);
    if (o.goes_on()) o = check_limits(req);
    // Body and model before the key slot: a request that is invalid or not allowed
    // never occupies it, and a streaming one knows it streams before it may wait.
    if (o.goes_on()) {
        relay::WholeBody read = co_await relay::read_whole_body(cs, rc, prepare_body(req), req.body);
        o = accept_body(req, read);
    }
    if (o.goes_on() && req.route == Route::response_by_id) o = route_by_response_id(req);
    if (o.goes_on()) o = co_await take_key_slot(req);
    if (o.goes_on()) o = co_await relay_upstream(req);
    if (o.kind == Outcome::reject) co_return co_await send_rejection(req, o);
    co_return o.keep_alive;
}

// ---- ShardGateway --------------------------------------------------------------

ChannelBoard::State& ShardGateway::channel_state(std::string_view id) {
    auto it = states_.find(std::string(id));
    if (it != states_.end()) return *it->second;
    ChannelBoard::State& s = shared_.channels.state(id);
    states_.emplace(std::string(id), &s);
    return s;
}

std::uint32_t ShardGateway::random() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<std::uint32_t>(rng_ >> 16);
}

}  // namespace rr::gateway

// Stage 4b, for GET/DELETE /v1/responses/{id}, .../input_items and .../cancel: the
// channel that created the response, remembered when its POST /v1/responses was
// relayed (upstream.cpp, ResponseAffinity). An id the gateway does not know (made
// before it remembered, or expired) is routed like any request of the key's group;
// an id another key made is 404, as if it did not exist (docs/OPERATIONS.md,
// "Response affinity").
#include <optional>

#include "path.hpp"
#include "ringrelay/common.hpp"

namespace rr::gateway {
namespace {

// The route of `id`: still waiting for the writer, else in the store (in that order:
// see response_affinity.hpp). An expired one is no route.
std::optional<ResponseRouteEntry> find_route(GatewayRequest& req, std::int64_t now) {
    std::optional<ResponseRouteEntry> found = req.sg.shared().responses.find_unflushed(req.response_id);
    if (found) return found;
    store::ReadScope scope(req.sg.reader());
    if (!scope.ok()) return std::nullopt;
    const store::ResponseRouteView v = req.sg.reader().response_route(req.response_id);
    if (!v.valid() || v.expired_at(now)) return std::nullopt;
    return ResponseRouteEntry{req.response_id, std::string(v.channel_id()), std::string(v.key_id()), v.expires_at_ms()};
}

// The remembered channel still exists and is enabled (else normal routing).
bool channel_still_serves(GatewayRequest& req, std::string_view channel_id) {
    store::ReadScope scope(req.sg.reader());
    if (!scope.ok()) return false;
    const store::ChannelView ch = req.sg.reader().channel_by_id(channel_id);
    return ch.valid() && ch.enabled();
}

}  // namespace

Outcome route_by_response_id(GatewayRequest& req) {
    if (!req.sg.shared().responses.enabled()) return Outcome::proceed();
    const std::int64_t now = now_unix_ms();
    const std::optional<ResponseRouteEntry> route = find_route(req, now);
    if (!route) return Outcome::proceed();
    if (route->key_id != req.key.id)
        return req.reject_with(404, "response_not_found", "no response with id " + req.response_id);
    if (channel_still_serves(req, route->channel_id)) req.pinned_channel = route->channel_id;
    return Outcome::proceed();
}

}  // namespace rr::gateway

// Stage 4, the body: read whole (the gateway routes on its JSON) by relay's
// read_whole_body within these limits, then its model and stream flag; bad JSON and
// models the key may not use are refused here.
#include "path.hpp"

namespace rr::gateway {

relay::WholeBodyLimits prepare_body(GatewayRequest& req) {
    const relay::ServeSettings& st = req.shard.settings();
    req.body = req.shard.buffers().take();
    return relay::WholeBodyLimits{st.max_body, st.stream_idle_timeout_ms, {}};
}

Outcome accept_body(GatewayRequest& req, relay::WholeBody& read) {
    if (read.kind == relay::WholeBody::client_gone) return Outcome::finished(false);
    if (read.kind == relay::WholeBody::refused)
        return req.reject_with(read.status, read.code, std::move(read.message), false);
    // A by-id request names no model (GET/DELETE have no body; cancel's is empty): its
    // route comes from the response id. Its body, if any, is relayed as it came.
    if (req.route == Route::response_by_id) return Outcome::proceed();
    req.fields = read_request_fields(req.sg.json(), req.body);
    if (req.fields.error != BodyError::none) return Outcome::rejected(400, "invalid_request", describe(req.fields.error));
    if (!req.key.allows(req.fields.model))
        return Outcome::rejected(403, "model_not_allowed", "model not allowed for this key");
    read_session_body(req);
    req.rc.attribution.model = req.fields.model;
    req.rc.attribution.stream = req.fields.stream;
    return Outcome::proceed();
}

}  // namespace rr::gateway

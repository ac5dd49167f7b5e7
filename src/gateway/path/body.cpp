// Stage 4, read_request: the whole body (the gateway routes on its JSON), its model
// and stream flag; bad JSON and models the key may not use are refused here.
#include <string>

#include "path.hpp"
#include "ringrelay/relay/whole_body.hpp"

namespace rr::gateway {

io::Task<Outcome> read_request(GatewayRequest& req) {
    relay::RequestContext& rc = req.rc;
    const relay::ServeSettings& st = req.shard.settings();
    req.body = req.shard.buffers().take();
    const std::string too_large = "request body is larger than " + std::to_string(st.max_body) + " bytes";
    const relay::WholeBodyLimits limits{st.max_body, st.stream_idle_timeout_ms, too_large};
    relay::WholeBody read = co_await relay::read_whole_body(req.cs, rc, limits, req.body);
    if (read.kind == relay::WholeBody::client_gone) co_return Outcome::finished(false);
    if (read.kind == relay::WholeBody::refused)
        co_return Outcome::rejected(read.status, read.code, std::move(read.message), false);
    req.fields = read_request_fields(req.sg.json(), req.body);
    if (req.fields.error != BodyError::none)
        co_return Outcome::rejected(400, "invalid_request", std::string(describe(req.fields.error)));
    if (!req.key.allows(req.fields.model))
        co_return Outcome::rejected(403, "model_not_allowed", "model not allowed for this key");
    rc.model = req.fields.model;
    rc.stream = req.fields.stream;
    co_return Outcome::proceed();
}

}  // namespace rr::gateway

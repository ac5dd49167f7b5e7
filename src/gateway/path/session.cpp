// The request's session (--session-from): the first source in the operator's list that
// the request carries. Headers are read at admit, body fields once the body is parsed.
#include "path.hpp"
#include "ringrelay/gateway/channel_pick.hpp"

namespace rr::gateway {
namespace {

void name_session(GatewayRequest& req, std::size_t rank, std::string_view id) noexcept {
    req.session = session_hash(id);
    req.session_rank = rank;
}

}  // namespace

void read_session_header(GatewayRequest& req) {
    const auto& sources = req.shard.settings().session_sources;
    for (std::size_t i = 0; i < sources.size(); ++i) {
        if (sources[i].kind != relay::SessionSource::header) continue;
        for (const http::Header& f : req.rc.head.fields()) {
            if (!f.value.empty() && http::iequals(f.name, sources[i].header_name)) {
                name_session(req, i, f.value);
                return;
            }
        }
    }
}

void read_session_body(GatewayRequest& req) {
    const auto& sources = req.shard.settings().session_sources;
    for (std::size_t i = 0; i < sources.size() && i < req.session_rank; ++i) {
        const std::string* id = nullptr;
        if (sources[i].kind == relay::SessionSource::prompt_cache_key) id = &req.fields.prompt_cache_key;
        if (sources[i].kind == relay::SessionSource::metadata_user_id) id = &req.fields.metadata_user_id;
        if (id != nullptr && !id->empty()) {
            name_session(req, i, *id);
            return;
        }
    }
}

}  // namespace rr::gateway

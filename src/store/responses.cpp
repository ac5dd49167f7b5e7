// Response routes: which channel answered a /v1/responses request, for which key, until
// when. The server's writer thread stores them in batches and sweeps the expired ones;
// the shards read them through Reader::response_route.
#include "encode.hpp"
#include "ringrelay/store/ops.hpp"

namespace rr::store {

Status put_response_routes(Env& env, std::span<const ResponseRoute> routes, std::int64_t now_ms) {
    if (routes.empty()) return {};
    return env.write(
        [&](WriteTxn& txn) {
            for (const ResponseRoute& r : routes) {
                if (r.id.empty() || r.id.size() > kMaxResponseIdBytes) continue;  // LMDB keys are at most 511 bytes
                if (Status s = txn.put(Db::responses, r.id, encode_response_route(r.channel_id, r.key_id, r.expires_at_ms));
                    !s.ok())
                    return s;
            }
            return Status{};
        },
        now_ms);
}

Status prune_response_routes(Env& env, std::int64_t now_ms, std::size_t* pruned) {
    return env.write(
        [&](WriteTxn& txn) {
            return txn.erase_where(
                Db::responses,
                [now_ms](std::string_view, std::span<const std::byte> value) {
                    const ResponseRouteView v = ResponseRouteView::from(value.data(), value.size());
                    return !v.valid() || v.expired_at(now_ms);
                },
                pruned);
        },
        now_ms);
}

}  // namespace rr::store

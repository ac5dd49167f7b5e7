// /admin/blocks: list, add (replaces a block of the same prefix), remove.
#include "api.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"

namespace rr::admin {
namespace {

Reply blocks_list(store::Reader& reader) {
    const std::int64_t now = now_unix_ms();
    return json_array([&](store::JsonWriter& j) {
        reader.for_each_block([&](const store::BlockView& b) { store::block_json(j, b, now); });
    });
}

}  // namespace

Action plan_blocks(const Request& req, GatewayShared& gw) {
    store::Env& env = *gw.env;
    std::string error;
    switch (req.endpoint) {
    case Endpoint::blocks_list:
        return Action::on_worker([&env] { return with_reader(env, blocks_list); });
    case Endpoint::block_add: {
        BlockAdd add;
        if (!parse_block_add(req.body, req.now_ms, add, error)) break;
        return Action::on_worker([&env, add] {
            const store::Status s = store::add_block(env, add.prefix, add.reason, add.expires_at_ms, now_unix_ms());
            if (!s.ok()) return Reply::from_status(s);
            store::JsonWriter j;
            store::new_block_json(j, add.prefix, add.reason, add.expires_at_ms);
            return Reply::json(201, j.take());
        });
    }
    case Endpoint::block_remove: {
        IpPrefix prefix;
        if (!parse_block_remove(req.query, req.body, prefix, error)) break;
        return Action::on_worker([&env, prefix] {
            const store::Status s = store::remove_block(env, prefix, now_unix_ms());
            if (!s.ok()) return Reply::from_status(s);
            store::JsonWriter j;
            store::removed_json(j, "prefix", format_ip_prefix(prefix));
            return Reply::json(200, j.take());
        });
    }
    default:
        return Action::reply(Reply::error(404, "not_found", "no such block endpoint"));
    }
    return Action::reply(Reply::bad_request(error));
}

}  // namespace rr::admin

// /admin/keys: list, create, show, revoke, unrevoke, rotate, limits, and the force
// release of a key's slots. Answers are the CLI's --json documents (store/json.hpp).
#include "api.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/obs/metrics.hpp"

namespace rr::admin {
namespace {

Reply keys_list(store::Reader& reader) {
    const std::int64_t now = now_unix_ms();
    return json_array([&](store::JsonWriter& j) {
        for (const store::KeyView& k : store::keys_in_list_order(reader))
            store::key_json(j, k, reader.usage(k.id()), now);
    });
}

// The key as it is after a successful change, or why the change failed.
Reply key_after(store::Env& env, const store::Status& s, std::string_view id) {
    return s.ok() ? key_reply(env, id, 200) : Reply::from_status(s);
}

// Frees every slot the key holds (REFERENCE.md section 4: no restart ever needed to
// clear a slot). Leases still out are ignored when they come back (see KeySlots).
Reply release_key(store::Env& env, GatewayShared& gw, obs::Metrics* metrics, const std::string& id) {
    Reply unknown = with_reader(env, [&](store::Reader& reader) {
        return reader.key_by_id(id).valid() ? Reply() : Reply::error(404, "not_found", cat("no key with id ", id));
    });
    if (unknown.is_error()) return unknown;
    const std::uint32_t released = gw.keys.release_all(gateway::key_hash_of(id));
    if (metrics != nullptr && released != 0) metrics->count_key_force_releases(released);
    store::JsonWriter j;
    j.begin_object().key("id").str(id).key("released").num(released).end_object();
    return Reply::json(200, j.take());
}

}  // namespace

Reply key_reply(store::Env& env, std::string_view id, int status) {
    return with_reader(env, [&](store::Reader& reader) {
        const store::KeyView k = reader.key_by_id(id);
        if (!k.valid()) return Reply::error(404, "not_found", cat("no key with id ", id));
        store::JsonWriter j;
        store::key_json(j, k, reader.usage(id), now_unix_ms());
        return Reply::json(status, j.take());
    });
}

Action plan_keys(const Request& req, GatewayShared& gw, obs::Metrics* metrics) {
    store::Env& env = *gw.env;
    std::string error;
    const std::string& id = req.id;
    switch (req.endpoint) {
    case Endpoint::keys_list:
        return Action::on_worker([&env] { return with_reader(env, keys_list); });
    case Endpoint::key_get:
        return Action::on_worker([&env, id] { return key_reply(env, id, 200); });
    case Endpoint::key_create: {
        store::KeySpec spec;
        if (!parse_key_create(req.body, req.now_ms, spec, error)) break;
        return Action::on_worker([&env, spec] {
            store::NewKey created;
            if (store::Status s = store::create_key(env, spec, now_unix_ms(), created); !s.ok())
                return Reply::from_status(s);
            store::JsonWriter j;
            store::new_key_json(j, created.id, spec.name, created.secret);
            return Reply::json(201, j.take());
        });
    }
    case Endpoint::key_revoke: {
        std::string reason;
        if (!parse_revoke(req.body, reason, error)) break;
        return Action::on_worker([&env, id, reason] {
            return key_after(env, store::revoke_key(env, id, reason, now_unix_ms()), id);
        });
    }
    case Endpoint::key_unrevoke:
        return Action::on_worker([&env, id] {
            return key_after(env, store::unrevoke_key(env, id, now_unix_ms()), id);
        });
    case Endpoint::key_rotate: {
        std::int64_t grace_ms = 0;
        if (!parse_rotate(req.query, req.body, grace_ms, error)) break;
        return Action::on_worker([&env, id, grace_ms] {
            const std::int64_t now = now_unix_ms();
            std::string secret;
            const store::Status s = store::rotate_key(env, id, grace_ms, now, secret);
            if (!s.ok()) return Reply::from_status(s);
            store::JsonWriter j;
            store::rotated_key_json(j, id, secret, now + grace_ms);
            return Reply::json(200, j.take());
        });
    }
    case Endpoint::key_limits: {
        store::KeyPatch patch;
        if (!parse_key_patch(req.body, req.now_ms, patch, error)) break;
        return Action::on_worker([&env, id, patch] {
            return key_after(env, store::update_key(env, id, patch, now_unix_ms()), id);
        });
    }
    case Endpoint::key_release:
        return Action::on_worker([&env, &gw, metrics, id] { return release_key(env, gw, metrics, id); });
    default:
        return Action::reply(Reply::error(404, "not_found", "no such key endpoint"));
    }
    return Action::reply(Reply::bad_request(error));
}

}  // namespace rr::admin

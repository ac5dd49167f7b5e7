// /admin/channels: list, add, show (credential only with ?reveal=true), update,
// enable, disable, remove, and the operator's override of a channel's circuit.
#include "api.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"

namespace rr::admin {
namespace {

Reply channels_list(store::Reader& reader, const store::ServerTimeouts& server_timeout_ms) {
    return json_array([&](store::JsonWriter& j) {
        for (const store::ChannelView& c : store::channels_in_list_order(reader))
            store::channel_json(j, c, false, server_timeout_ms);
    });
}

// The channel as it is after a successful change, or why the change failed.
Reply channel_after(store::Env& env, const store::Status& s, std::string_view id, const store::ServerTimeouts& server_timeout_ms) {
    return s.ok() ? channel_reply(env, id, false, 200, server_timeout_ms) : Reply::from_status(s);
}

// Forces the circuit open for a while, or closed now (404 for a channel the store
// does not hold). The board keeps its own breaker running afterwards.
Reply set_circuit(store::Env& env, gateway::ChannelBoard& board, const std::string& id, CircuitChange change) {
    Reply unknown = with_reader(env, [&](store::Reader& reader) {
        if (reader.channel_by_id(id).valid()) return Reply();
        return Reply::error(404, "not_found", cat("no channel with id ", id));
    });
    if (unknown.is_error()) return unknown;
    gateway::ChannelBoard::State& state = board.state(id);
    const std::int64_t now = now_unix_ms();
    if (change.open)
        gateway::ChannelBoard::force_open(state, now, change.for_ms);
    else
        gateway::ChannelBoard::force_closed(state);
    store::JsonWriter j;
    channel_state_json(j, state, now);
    return Reply::json(200, j.take());
}

bool reveal_asked(std::string_view query, std::string& error) {
    bool malformed = false;
    const std::optional<std::string> v = query_param(query, "reveal", malformed);
    if (malformed || (v && *v != "true" && *v != "false" && *v != "1" && *v != "0")) {
        error = "reveal: use reveal=true or reveal=false";
        return false;
    }
    return v && (*v == "true" || *v == "1");
}

}  // namespace

Reply channel_reply(store::Env& env, std::string_view id, bool reveal, int status, const store::ServerTimeouts& server_timeout_ms) {
    return with_reader(env, [&](store::Reader& reader) {
        const store::ChannelView c = reader.channel_by_id(id);
        if (!c.valid()) return Reply::error(404, "not_found", cat("no channel with id ", id));
        store::JsonWriter j;
        store::channel_json(j, c, reveal, server_timeout_ms);
        return Reply::json(status, j.take());
    });
}

Action plan_channels(const Request& req, GatewayShared& gw, const store::ServerTimeouts& server_timeout_ms) {
    store::Env& env = *gw.env;
    const store::ServerTimeouts inherited = server_timeout_ms;  // what an unset channel timeout means here
    std::string error;
    const std::string& id = req.id;
    switch (req.endpoint) {
    case Endpoint::channels_list:
        return Action::on_worker([&env, inherited] {
            return with_reader(env, [&](store::Reader& r) { return channels_list(r, inherited); });
        });
    case Endpoint::channel_get: {
        const bool reveal = reveal_asked(req.query, error);
        if (!error.empty()) break;
        return Action::on_worker([&env, id, reveal, inherited] { return channel_reply(env, id, reveal, 200, inherited); });
    }
    case Endpoint::channel_create: {
        store::ChannelSpec spec;
        if (!parse_channel_create(req.body, spec, error)) break;
        return Action::on_worker([&env, spec, inherited] {
            std::string new_id;
            if (store::Status s = store::add_channel(env, spec, now_unix_ms(), new_id); !s.ok())
                return Reply::from_status(s);
            return channel_reply(env, new_id, false, 201, inherited);
        });
    }
    case Endpoint::channel_update: {
        store::ChannelPatch patch;
        if (!parse_channel_patch(req.body, patch, error)) break;
        return Action::on_worker([&env, id, patch, inherited] {
            return channel_after(env, store::update_channel(env, id, patch, now_unix_ms()), id, inherited);
        });
    }
    case Endpoint::channel_enable:
    case Endpoint::channel_disable: {
        const bool enabled = req.endpoint == Endpoint::channel_enable;
        return Action::on_worker([&env, id, enabled, inherited] {
            return channel_after(env, store::set_channel_enabled(env, id, enabled, now_unix_ms()), id, inherited);
        });
    }
    case Endpoint::channel_remove:
        return Action::on_worker([&env, id] {
            if (store::Status s = store::remove_channel(env, id, now_unix_ms()); !s.ok()) return Reply::from_status(s);
            store::JsonWriter j;
            store::removed_json(j, "id", id);
            return Reply::json(200, j.take());
        });
    case Endpoint::channel_circuit: {
        CircuitChange change;
        if (!parse_circuit(req.body, change, error)) break;
        return Action::on_worker([&env, &gw, id, change] { return set_circuit(env, gw.channels, id, change); });
    }
    default:
        return Action::reply(Reply::error(404, "not_found", "no such channel endpoint"));
    }
    return Action::reply(Reply::bad_request(error));
}

}  // namespace rr::admin

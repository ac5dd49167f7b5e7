// The admin API apart from the connection (admin.hpp's serve_admin does the
// socket side): the route table and the token check (admin_route.cpp), request
// bodies (admin_body.cpp), and one handler file per area (admin_keys.cpp,
// admin_channels.cpp, admin_blocks.cpp, admin_state.cpp, admin_backup.cpp).
//
// A handler parses the request on the shard (a bad field is answered at once, 400,
// without touching anything) and returns an Action: either the Reply itself, or a
// job for the BlockingWorker. Everything that touches LMDB is such a job: writes
// (fsync), hot backups, and reads too, which open a Reader of the job's own on the
// worker thread, so the shard never waits on the disk and never holds a second
// Reader beside its gateway one. Jobs may also read the shared gateway state
// (KeySlots, TokenPool, ChannelBoard: all thread-safe) and Metrics (any thread).
//
// Nothing here throws on a bad request; std::bad_alloc is the only exception.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringrelay/admin/admin.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/relay/session.hpp"
#include "ringrelay/common.hpp"
#include "ringrelay/store/env.hpp"
#include "ringrelay/gateway/channel_board.hpp"
#include "ringrelay/store/json.hpp"
#include "ringrelay/store/ops.hpp"
#include "ringrelay/store/reader.hpp"

namespace rr::admin {

// The admin API serves on relay's sessions and reaches the gateway's shared state.
using gateway::GatewayShared;
using relay::ClientSession;
using relay::RequestContext;
using relay::ServeSettings;

// ---- routes (admin_route.cpp) --------------------------------------------------------

enum class Endpoint : std::uint8_t {
    healthz,
    readyz,
    metrics,
    state,
    status_page,
    keys_list,
    key_create,
    key_get,
    key_revoke,
    key_unrevoke,
    key_rotate,
    key_limits,
    key_release,
    channels_list,
    channel_create,
    channel_get,
    channel_update,
    channel_remove,
    channel_enable,
    channel_disable,
    channel_circuit,
    blocks_list,
    block_add,
    block_remove,
    backup,
};

struct Route {
    enum Outcome : std::uint8_t { found, not_found, method_not_allowed } outcome = not_found;
    Endpoint endpoint = Endpoint::healthz;
    std::string_view id;       // the {id} path segment (a view into the path), or empty
    std::string allow;         // method_not_allowed: the methods the path takes, "GET, POST"
    bool needs_token = true;   // false only for /healthz, /readyz and the status page /
};

// Matches method and path (without the query) against the admin routes. A trailing
// '/' is ignored. Paths that match no route need the token too (an unauthorised
// caller learns nothing about which routes exist).
Route route_admin(std::string_view method, std::string_view path);

// The token of "Authorization: Bearer <token>" (scheme case-insensitive), or "".
std::string_view bearer_token(std::string_view authorization) noexcept;
// Compares in time that depends only on expected's length, never on where the two
// differ. An empty expected token matches nothing.
bool token_matches(std::string_view presented, std::string_view expected) noexcept;

// The value of `name` in a query string ("a=1&b=x%2Fy"), percent-decoded with '+'
// as a space; nullopt when the parameter is absent. A malformed escape gives "" back
// through `malformed` = true.
std::optional<std::string> query_param(std::string_view query, std::string_view name, bool& malformed);

// ---- requests and answers ------------------------------------------------------------

struct Request {
    Endpoint endpoint = Endpoint::healthz;
    std::string id;     // {id} of the path
    std::string query;  // raw, after '?'
    std::string body;   // the whole request body (JSON for the write endpoints)
    std::int64_t now_ms = 0;
};

struct Reply {
    int status = 200;
    std::string body;  // JSON (or the metrics text); unused for errors
    std::string_view content_type = "application/json";
    std::string_view error_code;  // set: an error, sent as the gateway's JSON error body
    std::string message;          // the error's message
    std::string extra_headers;    // complete header lines ("Allow: GET\r\n")

    bool is_error() const noexcept { return !error_code.empty(); }
    static Reply json(int status, std::string body);
    static Reply error(int status, std::string_view code, std::string message);
    // A 400 invalid_request naming what is wrong.
    static Reply bad_request(std::string message) { return error(400, "invalid_request", std::move(message)); }
    // A failed store operation: invalid -> 400 invalid_request, not_found -> 404
    // not_found, anything else -> 500 store_error.
    static Reply from_status(const store::Status& s);
};

struct Action {
    std::optional<Reply> now;     // answered on the shard
    std::function<Reply()> job;   // else: run on the BlockingWorker; its Reply is the answer

    static Action reply(Reply r) {
        Action a;
        a.now = std::move(r);
        return a;
    }
    static Action on_worker(std::function<Reply()> job) {
        Action a;
        a.job = std::move(job);
        return a;
    }
};

// What to do for req (route found, token checked, body read). Dispatches to the
// handlers below.
Action plan_admin(const Request& req, AdminContext& admin);

// ---- handlers (one file each) --------------------------------------------------------

// admin_status_page.cpp: GET / -- the status page, a static HTML shell with no
// data in it: its script asks for the token and fetches /admin/state and /metrics
// with it, so the page itself needs none.
Action plan_status_page(const Request& req);

// admin_state.cpp: /healthz, /readyz, /metrics, /admin/state.
Action plan_health(const Request& req, AdminContext& admin);
Action plan_metrics(const Request& req, AdminContext& admin);
Action plan_state(const Request& req, AdminContext& admin);
// The /admin/state document; env may be null (relay mode: no key ids to resolve).
std::string state_json(AdminContext& admin, store::Env* env, std::int64_t now_ms);
// One channel's live state, as /admin/state lists it and the circuit endpoint
// answers: {"id","in_flight","consecutive_failures","circuit":"open|closed","open_until"}.
void channel_state_json(store::JsonWriter& j, const gateway::ChannelBoard::State& s, std::int64_t now_ms);

// Runs fn(reader) -> Reply with a fresh Reader of env, made and dropped inside the
// call on the calling thread (the worker's: see the top of this file); a Reader that
// cannot start a snapshot answers the store's error instead.
template <class Fn>
Reply with_reader(store::Env& env, Fn&& fn) {
    store::Reader reader(env);
    if (store::Status s = reader.renew(); !s.ok()) return Reply::from_status(s);
    return fn(reader);
}

// A 200 answer: the JSON array that each(JsonWriter&) fills with its elements.
template <class Each>
Reply json_array(Each&& each) {
    store::JsonWriter j;
    j.begin_array();
    each(j);
    j.end_array();
    return Reply::json(200, j.take());
}

// The record as `key show --json` / `channel show --json` print it, or 404. A channel
// also shows "effective_timeout_ms": its own timeout, or server_timeout_ms when unset.
Reply key_reply(store::Env& env, std::string_view id, int status);
Reply channel_reply(store::Env& env, std::string_view id, bool reveal, int status, const store::ServerTimeouts& server_timeout_ms);

// admin_keys.cpp, admin_channels.cpp, admin_blocks.cpp, admin_backup.cpp. Each
// needs the gateway (relay mode answers 404 before they are called).
Action plan_keys(const Request& req, GatewayShared& gw, obs::Metrics* metrics);
Action plan_channels(const Request& req, GatewayShared& gw, const store::ServerTimeouts& server_timeout_ms);
Action plan_blocks(const Request& req, GatewayShared& gw);
Action plan_backup(const Request& req, GatewayShared& gw);

// ---- bodies (admin_body.cpp) ---------------------------------------------------------

// Each parse_* reads one endpoint's JSON body (query for some), checks every field
// with the store's validation, and returns false with `error` naming the field.

// POST /admin/keys: name (required), group, models (array or "a,b"), max_concurrency,
// max_wait, rpm, tpm, quota, expires (duration, RFC 3339 or "never").
bool parse_key_create(std::string_view body, std::int64_t now_ms, store::KeySpec& out, std::string& error);
// PUT /admin/keys/{id}/limits: any of the create fields (at least one).
bool parse_key_patch(std::string_view body, std::int64_t now_ms, store::KeyPatch& out, std::string& error);
// POST /admin/keys/{id}/revoke: optional {"reason"}.
bool parse_revoke(std::string_view body, std::string& reason, std::string& error);
// POST /admin/keys/{id}/rotate?grace=24h (or {"grace"} in the body): grace in ms.
bool parse_rotate(std::string_view query, std::string_view body, std::int64_t& grace_ms, std::string& error);

// POST /admin/channels: name, base_url, api_key, models (required); type, groups,
// model_map (object or "a=b,c=d"), weight, priority, max_concurrency, timeout, enabled.
bool parse_channel_create(std::string_view body, store::ChannelSpec& out, std::string& error);
// PUT /admin/channels/{id}: any of those (at least one).
bool parse_channel_patch(std::string_view body, store::ChannelPatch& out, std::string& error);

// POST /admin/channels/{id}/circuit: {"state":"open","for":"300s"} or {"state":"closed"}.
struct CircuitChange {
    bool open = false;
    std::int64_t for_ms = 0;  // open: how long (0: the board's default period)
};
bool parse_circuit(std::string_view body, CircuitChange& out, std::string& error);

// POST /admin/blocks: {"address" (required), "ttl" (default 24h, or "never"), "reason"}.
struct BlockAdd {
    IpPrefix prefix;
    std::string reason;
    std::int64_t expires_at_ms = 0;  // 0 = never
};
bool parse_block_add(std::string_view body, std::int64_t now_ms, BlockAdd& out, std::string& error);
// DELETE /admin/blocks?address=... or {"address"}.
bool parse_block_remove(std::string_view query, std::string_view body, IpPrefix& out, std::string& error);

// POST /admin/backup: {"path": an absolute directory}.
bool parse_backup(std::string_view body, std::string& path, std::string& error);

}  // namespace rr::admin

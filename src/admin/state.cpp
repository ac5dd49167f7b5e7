// What an operator looks at: /healthz, /readyz, /metrics and /admin/state (live
// tokens, per-key and per-channel in-flight counts, circuits, per-shard totals).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "api.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/obs/metrics.hpp"
#include "ringrelay/store/reader.hpp"

namespace rr::admin {
namespace {

// Seconds since this process started: /proc/uptime minus the process's start time
// (field 22 of /proc/self/stat, in clock ticks since boot). 0 when unreadable.
std::uint64_t process_uptime_s() {
    std::ifstream stat_file("/proc/self/stat");
    std::ifstream uptime_file("/proc/uptime");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    double since_boot = 0;
    uptime_file >> since_boot;
    const std::size_t paren = stat.rfind(')');  // the command name may hold spaces
    if (paren == std::string::npos || since_boot <= 0) return 0;
    std::istringstream fields(stat.substr(paren + 1));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; ++i) {}
    const long ticks = sysconf(_SC_CLK_TCK);
    const double started = ticks > 0 ? std::strtod(field.c_str(), nullptr) / static_cast<double>(ticks) : since_boot;
    return since_boot > started ? static_cast<std::uint64_t>(since_boot - started) : 0;
}

std::string hex64(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// KeySlots knows keys only by the hash of their id (FNV-1a, gateway::key_hash_of).
// Resolving back takes one pass over the store's keys, made only when a key is
// busy, on the worker thread, stopping once every busy key is found.
std::unordered_map<std::uint64_t, std::string> key_ids_of(store::Env& env,
                                                          const std::vector<gateway::KeyInFlight>& busy) {
    std::unordered_map<std::uint64_t, std::string> ids;
    if (busy.empty()) return ids;
    store::Reader reader(env);
    if (!reader.renew().ok()) return ids;
    for (const gateway::KeyInFlight& k : busy) ids.emplace(k.key, std::string());
    std::size_t unresolved = ids.size();
    reader.for_each_key([&](const store::KeyView& k) {
        if (unresolved == 0) return;
        auto it = ids.find(gateway::key_hash_of(k.id()));
        if (it != ids.end() && it->second.empty()) {
            it->second.assign(k.id());
            --unresolved;
        }
    });
    return ids;
}

void tokens_json(store::JsonWriter& j, const gateway::TokenPool& tokens) {
    j.begin_object();
    j.key("capacity").num(tokens.capacity());
    j.key("in_use").num(tokens.in_use());
    j.key("free").num_signed(tokens.free_tokens());
    j.key("queue_depth").num(tokens.queue_depth());
    j.key("max_queue").num(tokens.max_queue());
    j.end_object();
}

void keys_json(store::JsonWriter& j, const gateway::KeySlots& keys, store::Env* env) {
    std::vector<gateway::KeyInFlight> busy = keys.snapshot();
    std::sort(busy.begin(), busy.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
    const auto ids = env != nullptr ? key_ids_of(*env, busy) : std::unordered_map<std::uint64_t, std::string>();
    j.begin_array();
    for (const gateway::KeyInFlight& k : busy) {
        j.begin_object();
        auto it = ids.find(k.key);
        j.key("id");
        if (it != ids.end() && !it->second.empty()) j.str(it->second);
        else j.null();
        j.key("slot").str(hex64(k.key));
        j.key("in_flight").num(k.in_flight);
        j.key("waiting").num(k.waiting);
        j.key("max_concurrency").num(k.max_concurrency);
        j.end_object();
    }
    j.end_array();
}

void shards_json(store::JsonWriter& j, const obs::Metrics* metrics) {
    j.begin_array();
    for (unsigned i = 0; metrics != nullptr && i < metrics->shard_count(); ++i) {
        const obs::ShardTotals t = metrics->shard(i).totals();
        j.begin_object();
        j.key("shard").num(i);
        j.key("requests").num(t.requests);
        j.key("connections_active").num(t.connections_active);
        j.key("upstream_connections").num(t.upstream_connections);
        j.key("upstream_requests").num(t.upstream_requests);
        j.key("enobufs").num(t.enobufs);
        j.key("cq_overflows").num(t.cq_overflows);
        j.end_object();
    }
    j.end_array();
}

}  // namespace

void channel_state_json(store::JsonWriter& j, const gateway::ChannelBoard::State& s, std::int64_t now_ms) {
    const bool open = gateway::ChannelBoard::circuit_open(s, now_ms);
    const std::int64_t until = std::max(s.open_until_ms.load(std::memory_order_relaxed),
                                        s.forced_open_until_ms.load(std::memory_order_relaxed));
    j.begin_object();
    j.key("id").str(s.id);
    j.key("in_flight").num(s.in_flight.load(std::memory_order_relaxed));
    j.key("consecutive_failures").num(s.consecutive_failures.load(std::memory_order_relaxed));
    j.key("circuit").str(open ? "open" : "closed");
    j.key("open_until").time(open && !gateway::ChannelBoard::health_down(s) ? until : 0);
    j.key("health").str(gateway::ChannelBoard::health_name(s.health.load(std::memory_order_relaxed)));
    j.key("health_last_check").time(s.last_check_ms.load(std::memory_order_relaxed));
    j.key("health_last_status").num(static_cast<std::uint64_t>(s.last_check_status.load(std::memory_order_relaxed)));
    j.key("health_consecutive_failures").num(s.check_failures.load(std::memory_order_relaxed));
    j.key("requests").num(s.requests.load(std::memory_order_relaxed));
    j.key("failures").num(s.failures.load(std::memory_order_relaxed));
    j.end_object();
}

std::string state_json(AdminContext& admin, store::Env* env, std::int64_t now_ms) {
    store::JsonWriter j;
    j.begin_object();
    j.key("tokens");
    if (admin.gateway != nullptr) tokens_json(j, admin.gateway->tokens);
    else j.null();
    j.key("keys");
    if (admin.gateway != nullptr) keys_json(j, admin.gateway->keys, env);
    else j.begin_array().end_array();
    j.key("channels").begin_array();
    if (admin.gateway != nullptr)
        admin.gateway->channels.for_each(
            [&](const gateway::ChannelBoard::State& s) { channel_state_json(j, s, now_ms); });
    j.end_array();
    j.key("shards");
    shards_json(j, admin.metrics);
    j.key("uptime_s").num(process_uptime_s());
    j.end_object();
    return j.take();
}

Action plan_health(const Request& req, AdminContext& admin) {
    if (req.endpoint == Endpoint::healthz) return Action::reply(Reply::json(200, "{\"status\":\"ok\"}"));
    // Ready: the data is open and a channel is enabled (relay mode: always). Read
    // here on the shard with a Reader of its own (the shard's gateway Reader is idle
    // between requests), so a probe never waits behind a backup on the worker.
    bool ready = admin.gateway == nullptr;
    if (!ready) {
        store::Reader reader(*admin.gateway->env);
        ready = reader.renew().ok() && reader.has_enabled_channel();
    }
    return Action::reply(ready ? Reply::json(200, "{\"status\":\"ready\"}")
                               : Reply::json(503, "{\"status\":\"not ready\",\"reason\":\"no enabled channel\"}"));
}

Action plan_metrics(const Request&, AdminContext& admin) {
    if (admin.metrics == nullptr) return Action::reply(Reply::error(404, "not_found", "metrics are not enabled"));
    Reply r = Reply::json(200, admin.metrics->render());
    r.content_type = obs::kMetricsContentType;
    return Action::reply(std::move(r));
}

Action plan_state(const Request& req, AdminContext& admin) {
    if (admin.gateway == nullptr) return Action::reply(Reply::json(200, state_json(admin, nullptr, req.now_ms)));
    store::Env& env = *admin.gateway->env;
    return Action::on_worker([&admin, &env] { return Reply::json(200, state_json(admin, &env, now_unix_ms())); });
}

}  // namespace rr::admin

// The gateway's request path, stage by stage as docs/ARCHITECTURE.md draws it:
//   route -> auth (key in LMDB) -> block list -> limits -> body + model -> key slot
//   -> global token -> channel pick -> upstream (retrying other channels) -> release
// The token comes before the pick: a request waiting for a token holds no channel slot.
// Every slot, token and channel count is an RAII guard in this frame, so every way
// out of serve_gateway() gives it back.
#include <time.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "ringrelay/relay/body_tracker.hpp"
#include "ringrelay/relay/early_stream.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "grant_wait.hpp"
#include "ringrelay/relay/replies.hpp"
#include "ringrelay/relay/request_log.hpp"
#include "ringrelay/obs/log.hpp"
#include "ringrelay/gateway/channel_pick.hpp"
#include "ringrelay/gateway/request_body.hpp"
#include "ringrelay/gateway/usage_tap.hpp"
#include "ringrelay/store/ops.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::gateway {

// The gateway path drives relay's session and exchange: their names read unqualified here.
using namespace rr::relay;
namespace {

using gateway::ChannelBoard;

constexpr std::size_t kMaxCandidates = 64;

std::int64_t wall_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

enum class Route { relay, models, readyz, not_found };

Route route_of(const http::RequestHead& h) noexcept {
    const http::Method m = http::method_of(h.method);
    if (h.path == "/readyz" && (m == http::Method::get || m == http::Method::head)) return Route::readyz;
    if (h.path == "/v1/models" && m == http::Method::get) return Route::models;
    if (h.path.starts_with("/v1/")) return Route::relay;
    return Route::not_found;
}

// The secret from "Authorization: Bearer <secret>" or "x-api-key: <secret>".
std::string_view presented_secret(const http::RequestHead& h) noexcept {
    std::string_view v = h.authorization;
    if (v.size() > 7 && http::iequals(v.substr(0, 7), "bearer ")) {
        v.remove_prefix(7);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        return v;
    }
    return h.x_api_key;
}

// What the path needs of the caller's key, copied out of its record.
struct KeyInfo {
    std::string id;
    std::string group;
    std::string models;  // allowed models, comma list; empty = all
    std::uint32_t max_concurrency = 1;
    std::uint32_t max_wait = 0;
    std::uint32_t rpm = 0;
    std::uint64_t tpm = 0;
    std::uint64_t quota = 0;
    std::uint64_t tokens_used = 0;  // lifetime, as flushed to the store
    std::uint64_t key_hash = 0;      // KeySlots / RateLimits key
    bool allows(std::string_view model) const noexcept {
        return models.empty() || store::ListView(models).contains(model);
    }
};

struct Rejection {
    int status = 0;
    std::string_view code;
    std::string message;
};

// Auth and the block list, inside one read snapshot. Fills key or says why not.
std::optional<Rejection> authenticate(ShardGateway& sg, const store::Sha256* hash, const PeerAddress& peer,
                                      KeyInfo& key) {
    store::ReadScope scope(sg.reader());
    if (!scope.ok()) return Rejection{503, "store_unavailable", "key store unavailable: " + scope.status().message};
    const std::int64_t now = wall_ms();
    if (peer.family != 0) {
        IpAddress addr;
        addr.family = peer.family == AF_INET ? 4 : 6;
        std::copy(peer.bytes, peer.bytes + 16, addr.bytes.begin());
        if (sg.reader().find_block(unmap_ipv4(addr), now).valid())
            return Rejection{403, "ip_blocked", "client address is blocked"};
    }
    if (hash == nullptr) return Rejection{401, "invalid_api_key", "invalid api key"};
    const store::KeyMatch match = sg.reader().find_key(*hash);
    switch (store::classify(match, now)) {
    case store::KeyStatus::ok:
        break;
    case store::KeyStatus::unknown:
        return Rejection{401, "invalid_api_key", "invalid api key"};
    case store::KeyStatus::revoked:
        return Rejection{401, "key_revoked", "api key has been revoked"};
    case store::KeyStatus::expired:
    case store::KeyStatus::rotated_past_grace:
        return Rejection{401, "key_expired", "api key has expired"};
    }
    const store::KeyView& k = match.key;
    key.id.assign(k.id());
    key.group.assign(k.group());
    key.models.assign(k.models().text());
    key.max_concurrency = k.max_concurrency() == 0 ? 1 : k.max_concurrency();
    key.max_wait = k.max_wait();
    key.rpm = k.rpm();
    key.tpm = k.tpm();
    key.quota = k.quota();
    key.tokens_used = key.quota ? sg.reader().usage(key.id).tokens() : 0;
    key.key_hash = key_hash_of(key.id);
    return std::nullopt;
}

// One relayed request's token usage: the tap reads it from the response body, and
// record() files it with the rate limits once. The exchange calls record() as soon as
// the upstream's body is complete, before its last bytes reach the client: a client
// that sends its next request the moment it has the answer (possibly to another
// shard) must find these tokens counted against its quota and TPM.
struct UsageCount {
    gateway::UsageTap tap;
    gateway::RateLimits& limits;
    const KeyInfo& key;
    gateway::KeySlotGuard& key_slot;  // freed with the count: the client may ask again at once
    bool recorded = false;

    UsageCount(bool stream, gateway::RateLimits& l, const KeyInfo& k, gateway::KeySlotGuard& slot)
        : tap(stream), limits(l), key(k), key_slot(slot) {}

    void record() noexcept {
        if (recorded) return;
        recorded = true;
        const gateway::TokenUsage usage = tap.result();
        const std::uint64_t tokens =
            usage.total_tokens ? usage.total_tokens : usage.prompt_tokens + usage.completion_tokens;
        limits.record_usage(key.key_hash, key.id, 1, tokens, wall_ms());
        key_slot.reset();
    }
};

// RPM, TPM and quota, before the request takes any slot. On refusal sets
// retry_after (seconds, 0 = none).
std::optional<Rejection> check_limits(gateway::RateLimits& limits, const KeyInfo& key, std::uint32_t& retry_after) {
    const std::int64_t now = wall_ms();
    retry_after = 0;
    if (key.quota != 0) {
        const auto q = gateway::RateLimits::check_quota(key.tokens_used, limits.pending_tokens(key.key_hash), key.quota);
        if (!q.allowed) return Rejection{429, "quota_exceeded", "quota exceeded"};
    }
    if (key.tpm != 0) {
        const auto t = limits.check_tokens(key.key_hash, key.tpm, now);
        if (!t.allowed) {
            retry_after = t.retry_after_s;
            return Rejection{429, "rate_limited", "rate limit exceeded"};
        }
    }
    if (key.rpm != 0) {  // last: it counts the request when it lets it through
        const auto r = limits.check_request(key.key_hash, key.rpm, now);
        if (!r.allowed) {
            retry_after = r.retry_after_s;
            return Rejection{429, "rate_limited", "rate limit exceeded"};
        }
    }
    return std::nullopt;
}

// GET /v1/models: the models this key may use, in OpenAI's list format.
std::string models_body(ShardGateway& sg, const KeyInfo& key) {
    std::string body = "{\"object\":\"list\",\"data\":[";
    bool first = true;
    store::ReadScope scope(sg.reader());
    if (scope.ok()) {
        sg.reader().for_each_model_in_group(key.group, [&](std::string_view model) {
            if (!key.allows(model)) return;
            if (!first) body += ',';
            first = false;
            body += "{\"id\":\"";
            obs::append_json_escaped(body, model);
            body += "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"ringrelay\"}";
        });
    }
    body += "]}";
    return body;
}

// A channel chosen for one attempt, or why none could be.
struct Pick {
    enum Kind { chosen, not_found, none_usable } kind = none_usable;
    ChannelChoice channel;
    gateway::ChannelSlot slot;
    bool others_usable = false;  // another untried channel could take a retry
};

bool was_tried(const std::vector<std::string>& tried, std::string_view id) {
    for (const std::string& t : tried)
        if (t == id) return true;
    return false;
}

void fill_choice(ChannelChoice& c, const store::ChannelView& v, std::string_view model) {
    c.id.assign(v.id());
    c.base_url.assign(v.base_url());
    c.credential_header.assign(v.type() == store::ChannelType::anthropic ? "x-api-key: " : "Authorization: Bearer ");
    c.credential_header.append(v.api_key()).append("\r\n");
    c.upstream_model.assign(v.model_map().map(model));
    c.updated_at_ms = v.updated_at_ms();
    c.timeout_ms = v.timeout_ms();
    c.pass_headers = v.pass_headers();
}

Pick pick_channel_for(ShardGateway& sg, const KeyInfo& key, std::string_view model, const std::vector<std::string>& tried) {
    Pick pick;
    store::ReadScope scope(sg.reader());
    if (!scope.ok()) return pick;
    std::array<store::ChannelView, kMaxCandidates> views;
    const std::size_t n = std::min(sg.reader().channels_for(key.group, model, views), kMaxCandidates);
    if (n == 0) {
        pick.kind = Pick::not_found;
        return pick;
    }
    const std::int64_t now = wall_ms();
    std::array<gateway::Candidate, kMaxCandidates> cands;
    std::array<ChannelBoard::State*, kMaxCandidates> states;
    for (std::size_t i = 0; i < n; ++i) {
        const store::ChannelView& v = views[i];
        states[i] = &sg.channel_state(v.id());
        cands[i].priority = v.priority();
        cands[i].weight = v.weight();
        cands[i].usable = v.enabled() && !ChannelBoard::circuit_open(*states[i], now) &&
                          !ChannelBoard::saturated(*states[i], v.max_concurrency()) && !was_tried(tried, v.id());
    }
    const std::span<gateway::Candidate> span(cands.data(), n);
    for (;;) {  // a slot lost to another shard between check and take: pick again
        const int i = gateway::pick_channel(span, sg.random());
        if (i == gateway::kNoChannel) return pick;
        pick.slot = gateway::ChannelSlot::try_enter(*states[i], views[i].max_concurrency());
        if (!pick.slot.holds()) {
            cands[i].usable = false;
            continue;
        }
        fill_choice(pick.channel, views[i], model);
        pick.channel.state = states[i];
        pick.kind = Pick::chosen;
        pick.others_usable = gateway::count_usable(span) > 1;
        return pick;
    }
}

// What a pick could come to once a token is in hand, without taking a slot: no
// channel serves the model (not_found), every one that does is disabled or
// open-circuit (none_usable), or one may take it (chosen). Saturation is not judged:
// slots are taken only after the token, and in-flight requests give theirs back
// before their token. Read only on the slow paths (no token at once).
Pick::Kind channel_outlook(ShardGateway& sg, const KeyInfo& key, std::string_view model) {
    store::ReadScope scope(sg.reader());
    if (!scope.ok()) return Pick::none_usable;
    std::array<store::ChannelView, kMaxCandidates> views;
    const std::size_t n = std::min(sg.reader().channels_for(key.group, model, views), kMaxCandidates);
    if (n == 0) return Pick::not_found;
    const std::int64_t now = wall_ms();
    for (std::size_t i = 0; i < n; ++i)
        if (views[i].enabled() && !ChannelBoard::circuit_open(sg.channel_state(views[i].id()), now)) return Pick::chosen;
    return Pick::none_usable;
}

void interrupt_wait(void* wait) noexcept { static_cast<GrantWait*>(wait)->interrupt(); }

enum class WaitEnd { granted, timed_out, client_gone };

// Waits on gw until deadline. A streaming request gets its SSE head before the wait
// and a ping every 15 s during it (REFERENCE.md section 3).
io::Task<GrantWait::Result> wait_with_pings(ClientSession& cs, RequestContext& rc, GrantWait& gw,
                                            std::uint64_t deadline) {
    io::Loop& loop = cs.shard.loop();
    if (rc.stream && !rc.stream_started && co_await start_early_stream(cs, rc) < 0) {
        gw.interrupt();  // the client is gone
        co_return co_await gw.wait(deadline);
    }
    for (;;) {
        const std::uint64_t next_ping = rc.stream ? loop.now_ms() + kStreamPingIntervalMs : deadline;
        const GrantWait::Result r = co_await gw.wait(std::min(deadline, next_ping));
        if (r != GrantWait::Result::timed_out || loop.now_ms() >= deadline) co_return r;
        if (co_await send_stream_ping(cs, rc) < 0) gw.interrupt();
    }
}

WaitEnd given_up(GrantWait::Result r) noexcept {
    return r == GrantWait::Result::timed_out ? WaitEnd::timed_out : WaitEnd::client_gone;
}

// Waits for the key slot the KeySlots queued us for; on success slot holds it. A
// grant that wins the race against our cancel is ours too: it lands in a guard
// that gives it back as the wait returns, so no way out can forget it.
io::Task<WaitEnd> wait_for_key(ClientSession& cs, RequestContext& rc, gateway::KeySlots& keys,
                               gateway::KeyWaiter& waiter, GrantWait& gw, std::uint64_t deadline,
                               gateway::KeySlotGuard& slot) {
    GrantWait::Result r;
    {
        StopWhenClientGone watch(cs, interrupt_wait, &gw);
        r = co_await wait_with_pings(cs, rc, gw, deadline);
    }
    if (r != GrantWait::Result::granted && keys.cancel(waiter) == gateway::CancelResult::cancelled)
        co_return given_up(r);
    if (r != GrantWait::Result::granted) co_await gw.arrival();  // lost the race: the grant is coming
    gateway::KeySlotGuard granted(keys, waiter.lease());
    if (r != GrantWait::Result::granted) co_return given_up(r);  // granted gives the lost race's slot back
    slot = std::move(granted);
    co_return WaitEnd::granted;
}

// Ends a queued token acquire whose wait ended with r; on granted, token holds it.
// As for the key slot, a grant that wins the race against our cancel lands in a
// guard that gives it back.
io::Task<WaitEnd> settle_token_wait(GrantWait::Result r, gateway::TokenPool& tokens, gateway::TokenWaiter& waiter,
                                    GrantWait& gw, gateway::TokenGuard& token) {
    if (r != GrantWait::Result::granted && tokens.cancel(waiter) == gateway::CancelResult::cancelled)
        co_return given_up(r);
    if (r != GrantWait::Result::granted) co_await gw.arrival();  // lost the race: the grant is coming
    gateway::TokenGuard granted(tokens);
    if (r != GrantWait::Result::granted) co_return given_up(r);  // granted gives the lost race's token back
    token = std::move(granted);
    co_return WaitEnd::granted;
}

io::Task<WaitEnd> wait_for_token(ClientSession& cs, RequestContext& rc, gateway::TokenPool& tokens,
                                 gateway::TokenWaiter& waiter, GrantWait& gw, std::uint64_t deadline,
                                 gateway::TokenGuard& token) {
    GrantWait::Result r;
    {
        StopWhenClientGone watch(cs, interrupt_wait, &gw);
        r = co_await wait_with_pings(cs, rc, gw, deadline);
    }
    co_return co_await settle_token_wait(r, tokens, waiter, gw, token);
}

enum class BodyEnd { complete, rejected, client_gone };

// Reads the whole request body (the gateway routes on its JSON) into body.
io::Task<BodyEnd> read_body(ClientSession& cs, RequestContext& rc, std::string& body, Rejection& why) {
    const ServeSettings& st = cs.shard.settings();
    io::Loop& loop = cs.shard.loop();
    if (rc.body_kind == http::BodyKind::content_length && rc.content_length > st.max_body) {
        why = {413, "body_too_large", "request body is larger than " + std::to_string(st.max_body) + " bytes"};
        co_return BodyEnd::rejected;
    }
    BodyTracker tracker(rc.body_kind, rc.content_length, st.max_body);
    if (!tracker.done() && rc.expect_continue && cs.in.empty()) {
        static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
        if (co_await cs.socket->send(k100, loop.now_ms() + st.stream_idle_timeout_ms) < 0) co_return BodyEnd::client_gone;
    }
    while (!tracker.done()) {
        if (cs.in.empty()) {
            const int r = co_await cs.socket->readable(loop.now_ms() + st.stream_idle_timeout_ms);
            if (r == -ETIMEDOUT) {
                why = {408, "request_timeout", "request body not received in time"};
                co_return BodyEnd::rejected;
            }
            if (r != io::Socket::kData) co_return BodyEnd::client_gone;
            continue;
        }
        const std::string_view view = cs.in.peek();
        const std::size_t n = tracker.measure(view, &body);
        if (tracker.error() != http::Error::none) {
            why = {http::status_for(tracker.error()),
                   tracker.error() == http::Error::body_too_large ? "body_too_large" : "bad_request",
                   std::string(http::message_for(tracker.error()))};
            co_return BodyEnd::rejected;
        }
        cs.in.consume(n);
        rc.bytes_in += n;
    }
    co_return BodyEnd::complete;
}

// NOTE: g++ 12 destroys twice a temporary with a destructor (a std::string, or a
// struct holding one) that stands in a co_await expression. Arguments of coroutine
// calls here are therefore plain values or named locals, never such temporaries.
io::Task<bool> reject(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                      std::string_view message, bool body_read) {
    // An unread body would be taken for the next request: close instead.
    const bool keep = rc.keep_alive && (body_read || rc.body_kind == http::BodyKind::none);
    co_return co_await send_error(cs, rc, status, code, message, keep);
}

io::Task<bool> reject(ClientSession& cs, RequestContext& rc, const Rejection& r, bool body_read) {
    co_return co_await reject(cs, rc, r.status, r.code, r.message, body_read);
}

io::Task<bool> answer_json(ClientSession& cs, RequestContext& rc, int status, std::string_view body) {
    Shard& shard = cs.shard;
    const bool keep = rc.keep_alive && rc.body_kind == http::BodyKind::none && !shard.draining();
    std::string out = shard.buffers().take();
    append_json_response(out, status, body, rc.request_id, keep);
    rc.status = status;
    const int s = co_await cs.socket->send(out, shard.loop().now_ms() + shard.settings().stream_idle_timeout_ms);
    rc.bytes_out += out.size();
    shard.buffers().give(std::move(out));
    co_return keep && s == 0;
}

io::Task<bool> answer_readyz(ClientSession& cs, RequestContext& rc, ShardGateway& sg) {
    bool ready = false;
    {
        store::ReadScope scope(sg.reader());
        ready = scope.ok() && sg.reader().has_enabled_channel();
    }
    co_return co_await answer_json(cs, rc, ready ? 200 : 503,
                                   ready ? "{\"status\":\"ready\"}"
                                         : "{\"status\":\"not ready\",\"reason\":\"no enabled channel\"}");
}

// 404 model_not_found or 503 no_available_channel for a pick that found no channel.
io::Task<bool> reject_pick(ClientSession& cs, RequestContext& rc, Pick::Kind kind, const std::string& model) {
    if (kind == Pick::not_found) {
        const std::string message = "no channel serves model " + model;
        co_return co_await reject(cs, rc, 404, "model_not_found", message, true);
    }
    const std::string message = "no available channel for model " + model;
    co_return co_await reject(cs, rc, 503, "no_available_channel", message, true);
}

// The global token when acquire() did not grant it at once (status queued or
// queue_full): a model no channel could take is answered without a wait, else the
// request waits in the queue. Returns nullopt with token held, else the answer
// given (keep-alive).
io::Task<std::optional<bool>> token_after_wait(ClientSession& cs, RequestContext& rc, ShardGateway& sg,
                                               const KeyInfo& key, const gateway::RequestFields& fields,
                                               gateway::TokenStatus status, gateway::TokenWaiter& waiter,
                                               GrantWait& gw, gateway::TokenGuard& token) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    gateway::TokenPool& tokens = sg.shared().tokens;
    const Pick::Kind outlook = channel_outlook(sg, key, fields.model);
    if (outlook != Pick::chosen) {
        if (status == gateway::TokenStatus::queued)
            co_await settle_token_wait(GrantWait::Result::interrupted, tokens, waiter, gw, token);
        co_return co_await reject_pick(cs, rc, outlook, fields.model);
    }
    if (status == gateway::TokenStatus::queue_full)
        co_return co_await reject(cs, rc, 429, "upstream_queue_full", "upstream queue is full", true);
    log_debug_event(shard.obs(), DebugEvent::upstream_queue, rc, tokens.queue_depth());
    const std::uint64_t started = shard.loop().now_ms();
    const WaitEnd end =
        co_await wait_for_token(cs, rc, tokens, waiter, gw, started + st.upstream_queue_timeout_ms, token);
    if (end == WaitEnd::client_gone) co_return false;
    rc.queue_ms += shard.loop().now_ms() - started;
    if (end == WaitEnd::timed_out)
        co_return co_await reject(cs, rc, 429, "queue_timeout", "timeout waiting for upstream concurrency slot", true);
    co_return std::nullopt;
}

// Token, then channel pick and upstream; other channels tried while nothing
// reached the client. body is the (possibly model-rewritten) request body.
io::Task<bool> relay_to_channels(ClientSession& cs, RequestContext& rc, ShardGateway& sg, const KeyInfo& key,
                                 const gateway::RequestFields& fields, std::string& body) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    // The global token before any channel slot: a request waiting for it holds no
    // channel's max_concurrency (a queue of them would turn newcomers away with 503
    // no_available_channel for up to the queue timeout), and the channel is picked
    // with the token in hand, so the pick is fresh. Declared before every pick: a
    // channel slot goes back before the token.
    gateway::TokenGuard token;
    {
        gateway::TokenPool& tokens = sg.shared().tokens;
        GrantWait gw(shard.loop());
        gateway::TokenWaiter waiter(&GrantWait::on_grant, &gw);
        const gateway::TokenStatus status = tokens.acquire(waiter);
        if (status == gateway::TokenStatus::granted) {
            token = gateway::TokenGuard(tokens);  // the usual case: no coroutine, no store read
        } else if (const std::optional<bool> answered =
                       co_await token_after_wait(cs, rc, sg, key, fields, status, waiter, gw, token)) {
            co_return *answered;
        }
    }
    std::vector<std::string> tried;
    ForwardOutcome last;
    for (std::uint32_t attempt = 0; attempt <= st.retries; ++attempt) {
        Pick pick = pick_channel_for(sg, key, fields.model, tried);
        if (pick.kind != Pick::chosen) {
            if (attempt == 0) co_return co_await reject_pick(cs, rc, pick.kind, fields.model);
            break;  // answer the last failure below
        }
        ChannelChoice& ch = pick.channel;
        upstream::TargetRef target;  // keeps the target (and its id) alive until forwarded
        std::string error;
        bool resolved = sg.targets().known_target(ch.id, ch.updated_at_ms, target);
        if (!resolved) resolved = co_await sg.targets().target_for(ch.id, ch.updated_at_ms, ch.base_url, target, error);
        if (!resolved) {
            ChannelBoard::record_failure(*ch.state, wall_ms());
            tried.push_back(ch.id);
            last = ForwardOutcome{ForwardOutcome::retry, false, 0, 502, "upstream_error", error};
            last.replay_reason = obs::ReplayReason::connect_failed;  // nothing was sent
            continue;
        }
        const bool rewrite = ch.upstream_model != fields.model;
        std::string mapped;
        if (rewrite) {
            mapped = body;
            gateway::rewrite_model(mapped, fields, ch.upstream_model);
        }
        // The client's billing headers reach only a channel that lets them pass: they
        // choose what the channel's account is billed for.
        if (ch.pass_headers & store::kPassOpenAIOrganization) ch.credential_header.append(rc.captured.openai_organization);
        if (ch.pass_headers & store::kPassOpenAIProject) ch.credential_header.append(rc.captured.openai_project);
        rc.channel_id = ch.id;
        if (attempt > 0)  // the request goes out again, on another channel
            if (obs::ShardMetrics* m = shard.obs().metrics) m->count_upstream_replay(last.replay_reason);
        ForwardPlan plan;
        plan.target = target.id();
        plan.extra_headers = ch.credential_header;
        plan.has_body_override = true;
        plan.body_override = rewrite ? std::string_view(mapped) : std::string_view(body);
        plan.retry_allowed = attempt < st.retries && pick.others_usable;
        plan.upstream_timeout_ms = ch.timeout_ms;
        last = co_await forward_request(cs, rc, plan);
        if (last.kind == ForwardOutcome::answered) {
            const bool failed = !rc.error_code.empty() || rc.status >= 500 || rc.status == 429;
            if (failed) ChannelBoard::record_failure(*ch.state, wall_ms());
            else if (rc.status != 499) ChannelBoard::record_success(*ch.state);
            co_return last.keep_alive;
        }
        ChannelBoard::record_failure(*ch.state, wall_ms());
        tried.push_back(ch.id);
        ++shard.counters().upstream_retries;
    }
    const std::string_view message = last.message.empty() ? std::string_view("upstream failed") : last.message;
    co_return co_await send_error(cs, rc, last.status ? last.status : 502,
                                  last.code.empty() ? std::string_view("upstream_error") : last.code, message,
                                  rc.keep_alive);
}

// Per-key slot: at most max_concurrency in flight; up to max_wait wait in order.
// Then the channels; the response's token usage feeds TPM and quota.
io::Task<bool> serve_with_key_slot(ClientSession& cs, RequestContext& rc, ShardGateway& sg, const KeyInfo& key,
                                   const gateway::RequestFields& fields, std::string& body) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    gateway::KeySlots& keys = sg.shared().keys;
    GrantWait key_gw(shard.loop());
    gateway::KeyWaiter key_waiter(&GrantWait::on_grant, &key_gw);
    const std::uint64_t wait_started = shard.loop().now_ms();
    const gateway::KeyAcquireResult kr = keys.acquire(key.key_hash, key.max_concurrency, key.max_wait, key_waiter);
    if (kr.status == gateway::KeyStatus::busy)
        co_return co_await reject(cs, rc, 429, "key_in_use", "api key is already in use", true);
    gateway::KeySlotGuard key_slot;
    if (kr.status == gateway::KeyStatus::granted) key_slot = gateway::KeySlotGuard(keys, kr.lease);
    if (kr.status == gateway::KeyStatus::queued) {
        const WaitEnd end = co_await wait_for_key(cs, rc, keys, key_waiter, key_gw,
                                                  shard.loop().now_ms() + st.upstream_queue_timeout_ms, key_slot);
        if (end == WaitEnd::client_gone) co_return false;
        if (end == WaitEnd::timed_out)
            co_return co_await reject(cs, rc, 429, "key_in_use", "api key is already in use", true);
    }
    rc.queue_ms = shard.loop().now_ms() - wait_started;
    log_debug_event(shard.obs(), DebugEvent::key_acquired, rc, keys.in_flight(key.key_hash));

    UsageCount count(fields.stream, sg.shared().limits, key, key_slot);
    rc.body_tap = [](void* c, std::string_view bytes) { static_cast<UsageCount*>(c)->tap.feed(bytes); };
    rc.body_end = [](void* c) { static_cast<UsageCount*>(c)->record(); };
    rc.body_tap_ctx = &count;
    const bool keep_alive = co_await relay_to_channels(cs, rc, sg, key, fields, body);
    rc.body_tap = nullptr;
    rc.body_end = nullptr;
    key_slot.reset();
    log_debug_event(shard.obs(), DebugEvent::key_released, rc, keys.in_flight(key.key_hash));
    // A body that never completed (cut short, or ended by the upstream's close) is
    // counted now, with what the tap saw of it.
    if (rc.upstream_status != 0) count.record();
    co_return keep_alive;
}

}  // namespace

io::Task<bool> ShardGateway::serve(ClientSession& cs, RequestContext& rc) {
    ShardGateway& sg = *this;
    Shard& shard = cs.shard;
    const Route route = route_of(rc.head);
    const std::string_view secret = presented_secret(rc.head);
    store::Sha256 hash{};
    if (!secret.empty()) hash = store::hash_secret(secret);
    // Only the digest outlives this line: the secret's bytes in the receive buffer (a
    // pooled ring buffer, the TLS plaintext or the head's carry) are overwritten, so no
    // buffer handed to the next request or connection holds a client's live key.
    cs.in.wipe(secret);
    const bool is_models = route == Route::models;
    // Everything below works on owned copies: the head's views die here.
    capture_head(cs, rc, /*strip_client_auth=*/true, /*replace_body=*/true);
    std::string path_for_error(rc.head.path);
    consume_head(cs, rc);

    if (route == Route::readyz) co_return co_await answer_readyz(cs, rc, sg);
    if (route == Route::not_found) {
        const std::string message = "no route for " + path_for_error;
        co_return co_await reject(cs, rc, 404, "not_found", message, false);
    }

    KeyInfo key;
    if (auto why = authenticate(sg, secret.empty() ? nullptr : &hash, cs.peer, key))
        co_return co_await reject(cs, rc, *why, false);
    rc.api_key_id = key.id;
    if (is_models) co_return co_await answer_json(cs, rc, 200, models_body(sg, key));
    std::uint32_t retry_after = 0;
    if (auto why = check_limits(sg.shared().limits, key, retry_after)) {
        const std::string header = retry_after ? "Retry-After: " + std::to_string(retry_after) + "\r\n" : "";
        const bool keep = rc.keep_alive && rc.body_kind == http::BodyKind::none;
        co_return co_await send_error(cs, rc, why->status, why->code, why->message, keep, header);
    }

    // Body and model first: a request that is invalid or not allowed never occupies
    // its key's slot, and a streaming one knows it streams before it may wait.
    std::string body = shard.buffers().take();
    Rejection why;
    const BodyEnd be = co_await read_body(cs, rc, body, why);
    if (be != BodyEnd::complete) {
        shard.buffers().give(std::move(body));
        if (be == BodyEnd::client_gone) co_return false;
        co_return co_await reject(cs, rc, why, false);
    }
    const gateway::RequestFields fields = gateway::read_request_fields(sg.json(), body);
    bool keep_alive;
    if (fields.error != gateway::BodyError::none) {
        keep_alive = co_await reject(cs, rc, 400, "invalid_request", gateway::describe(fields.error), true);
    } else if (!key.allows(fields.model)) {
        keep_alive = co_await reject(cs, rc, 403, "model_not_allowed", "model not allowed for this key", true);
    } else {
        rc.model = fields.model;
        rc.stream = fields.stream;
        keep_alive = co_await serve_with_key_slot(cs, rc, sg, key, fields, body);
    }
    shard.buffers().give(std::move(body));
    co_return keep_alive;
}

// ---- ShardGateway --------------------------------------------------------------

gateway::ChannelBoard::State& ShardGateway::channel_state(std::string_view id) {
    auto it = states_.find(std::string(id));
    if (it != states_.end()) return *it->second;
    ChannelBoard::State& s = shared_.channels.state(id);
    states_.emplace(std::string(id), &s);
    return s;
}

std::uint32_t ShardGateway::random() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<std::uint32_t>(rng_ >> 16);
}

}  // namespace rr::gateway

// Stage 8, relay_upstream: the global token, then for each attempt a channel, its
// credential and model, and relay's forward_request(); while nothing reached the
// client, a failed attempt goes to another channel (the one retry loop of the path).
// The response's token usage feeds TPM and quota (record).
#include <algorithm>
#include <array>
#include <span>
#include <string>
#include <vector>

#include "path.hpp"
#include "ringrelay/common.hpp"
#include "ringrelay/gateway/response_id_tap.hpp"
#include "ringrelay/gateway/usage_tap.hpp"
#include "ringrelay/relay/body_tracker.hpp"
#include "ringrelay/relay/request_log.hpp"

namespace rr::gateway {
namespace {

// One relayed request's token usage: the tap reads it from the response body, and
// record() files it with the rate limits once. The exchange calls record() as soon as
// the upstream's body is complete, before its last bytes reach the client: a client
// that sends its next request the moment it has the answer (possibly to another
// shard) must find these tokens counted against its quota and TPM.
// A successful POST /v1/responses also has its response id read (ids), so later
// requests for that id go to the channel that answered (affinity.cpp).
struct UsageCount final : relay::ResponseBodyObserver {
    UsageTap tap;
    ResponseIdTap ids;
    GatewayRequest& req;
    bool recorded = false;
    bool wants_id = false;
    // GET /v1/responses/{id} (and cancel) answer a response object with the usage of
    // its creation, counted already when it was made: not counted again.
    bool wants_usage = true;

    explicit UsageCount(GatewayRequest& r)
        : tap(r.fields.stream),
          req(r),
          wants_id(r.creates_response && r.sg.shared().responses.enabled()),
          wants_usage(r.route != Route::response_by_id) {}

    void on_body(std::string_view bytes) noexcept override {
        if (wants_usage) tap.feed(bytes);
        if (wants_id) ids.feed(bytes);
    }

    void on_body_end() noexcept override { record(); }

    void record() noexcept {
        if (recorded) return;
        recorded = true;
        remember_response();
        const std::uint64_t tokens = billable() ? note_usage(tap.result()) : 0;
        req.sg.shared().limits.record_usage(req.key.key_hash, req.key.id, 1, tokens, now_unix_ms());
        req.key_slot.reset();  // freed with the count: the client may ask again at once
    }

    // Only a successful answer to a model request is billed: an error's body is the
    // upstream's text about the failure, never tokens the client received.
    bool billable() const noexcept {
        const int status = req.rc.upstream_status;
        return req.route == Route::relay && !req.fields.model.empty() && status >= 200 && status < 300;
    }

    // Files what the upstream reported for the access log; the tokens to count. With
    // no report nothing is counted: re-tokenizing the text would bill a guess.
    std::uint64_t note_usage(const TokenUsage& usage) noexcept {
        relay::RequestContext& rc = req.rc;
        if (!usage.found) {
            rc.attribution.usage = obs::UsageReport::unknown;
            return 0;
        }
        rc.attribution.usage = obs::UsageReport::reported;
        rc.attribution.prompt_tokens = usage.prompt_tokens;
        rc.attribution.completion_tokens = usage.completion_tokens;
        return usage.total_tokens ? usage.total_tokens : usage.prompt_tokens + usage.completion_tokens;
    }

    // Before the last bytes reach the client, as the usage: a GET by id that follows at
    // once must find the route.
    void remember_response() noexcept {
        const int status = req.rc.upstream_status;
        if (!wants_id || status < 200 || status > 299 || ids.id().empty()) return;
        try {
            req.sg.shared().responses.remember(ids.id(), req.rc.attribution.channel_id, req.key.id, now_unix_ms());
        } catch (...) {  // out of memory: the id is routed normally later, nothing else is lost
        }
    }
};

// An OpenAI chat/completions stream to a channel with --inject-usage that did not ask
// for usage itself: it is made to, so its tokens count toward TPM and quota.
bool injects_usage(const GatewayRequest& req, const ChannelChoice& ch) noexcept {
    if (!ch.inject_usage || !req.fields.stream || req.fields.usage_asked || !req.fields.ask_usage) return false;
    const relay::CapturedRequest& c = req.rc.captured;
    std::string_view target = std::string_view(c.line).substr(std::min(c.line.size(), c.method_len + 1));
    target = target.substr(0, target.find('?'));
    return target.ends_with("/chat/completions") || target.ends_with("/completions");
}

// The forward of one attempt on the chosen channel.
relay::ForwardPlan plan_for(GatewayRequest& req, ChannelChoice& ch, const upstream::TargetRef& target,
                            std::string& mapped_body) {
    relay::RequestContext& rc = req.rc;
    std::array<BodyEdit, 2> edits;
    std::size_t n = 0;
    std::string token;
    if (ch.upstream_model != req.fields.model) {
        token = model_token(ch.upstream_model);
        edits[n++] = model_edit(req.fields, token);
    }
    if (injects_usage(req, ch)) edits[n++] = *req.fields.ask_usage;
    const bool rewrite = n != 0;
    if (rewrite) {
        mapped_body = req.body;
        apply_edits(mapped_body, std::span(edits.data(), n));
    }
    // The client's billing headers reach only a channel that lets them pass: they
    // choose what the channel's account is billed for.
    if (ch.pass_headers & store::kPassOpenAIOrganization) ch.credential_header.append(rc.captured.openai_organization);
    if (ch.pass_headers & store::kPassOpenAIProject) ch.credential_header.append(rc.captured.openai_project);
    relay::ForwardPlan plan;
    plan.target = target.id();
    plan.extra_headers = ch.credential_header;
    // The upstream names the channel's account in these: the client sees them only
    // where it may choose them itself.
    plan.hidden_response_fields.openai_organization = !(ch.pass_headers & store::kPassOpenAIOrganization);
    plan.hidden_response_fields.openai_project = !(ch.pass_headers & store::kPassOpenAIProject);
    // A by-id GET/DELETE came without a body and goes without one (no Content-Length: 0).
    plan.has_body_override = !(req.route == Route::response_by_id && rc.body_kind == http::BodyKind::none);
    plan.body_override = rewrite ? std::string_view(mapped_body) : std::string_view(req.body);
    plan.upstream_timeout_ms = ch.timeout_ms;
    plan.first_byte_timeout_off = ch.first_byte_timeout_ms == store::kFirstByteTimeoutOff;
    if (!plan.first_byte_timeout_off) plan.first_byte_timeout_ms = ch.first_byte_timeout_ms;
    return plan;
}

// What the channel board learns from an answered attempt.
void record_answer(const relay::RequestContext& rc, ChannelBoard::State& state) {
    const bool failed = !rc.error_code.empty() || rc.status >= 500 || rc.status == 429;
    if (failed) ChannelBoard::record_failure(state, now_unix_ms());
    else if (rc.status != 499) ChannelBoard::record_success(state);
}

// While the request is upstream: the usage tap on the response, and afterwards the
// token and key slot back (in that order) and the usage recorded.
class UpstreamTurn {
public:
    explicit UpstreamTurn(GatewayRequest& req) : req_(req), count_(req) {
        relay::RequestContext& rc = req.rc;
        rc.body_observer = &count_;
    }
    ~UpstreamTurn() {
        relay::RequestContext& rc = req_.rc;
        rc.body_observer = nullptr;
        req_.token.reset();
        req_.key_slot.reset();
        log_debug_event(req_.shard.obs(), relay::DebugEvent::key_released, rc,
                        req_.sg.shared().keys.in_flight(req_.key.key_hash));
        // A body that never completed (cut short, or ended by the upstream's close) is
        // counted now, with what the tap saw of it.
        if (rc.upstream_status != 0) count_.record();
    }
    UpstreamTurn(const UpstreamTurn&) = delete;
    UpstreamTurn& operator=(const UpstreamTurn&) = delete;

private:
    GatewayRequest& req_;
    UsageCount count_;
};

}  // namespace

io::Task<Outcome> relay_upstream(GatewayRequest& req) {
    relay::Shard& shard = req.shard;
    const UpstreamTurn turn(req);
    {
        // The global token before any channel slot: a request waiting for it holds no
        // channel's max_concurrency (a queue of them would turn newcomers away with 503
        // no_available_channel for up to the queue timeout), and the channel is picked
        // with the token in hand, so the pick is fresh.
        TokenPool& tokens = req.sg.shared().tokens;
        GrantWait gw(shard.loop());
        TokenWaiter waiter(&GrantWait::on_grant, &gw);
        const TokenStatus status = tokens.acquire(waiter);
        if (status == TokenStatus::granted) {
            req.token = TokenGuard(tokens);  // the usual case
        } else if (Outcome waited = co_await wait_for_token(req, status, waiter, gw); !waited.goes_on()) {
            co_return waited;
        }
    }
    // The one retry loop: a channel is picked, its target resolved and the request
    // forwarded, until one answers or no attempt is left; a failure handed back
    // becomes the rejection (502/504 with the last attempt's reason). The relay's
    // replay of a dead pooled connection is inside one attempt (relay/exchange.cpp).
    const std::uint32_t retries = shard.settings().retries;
    std::vector<std::string> tried;
    relay::ForwardOutcome last;
    for (std::uint32_t attempt = 0; attempt <= retries; ++attempt) {
        Pick pick = pick_channel_for(req, tried);
        if (pick.kind != Pick::chosen) {
            if (attempt == 0) co_return refuse_pick(req, pick.kind);
            break;  // answer the last failure below
        }
        ChannelChoice& ch = pick.channel;
        upstream::TargetRef target;  // keeps the target (and its id) alive until forwarded
        std::string error;
        bool resolved = req.sg.targets().known_target(ch.id, ch.updated_at_ms, target);
        if (!resolved) resolved = co_await req.sg.targets().target_for(ch.id, ch.updated_at_ms, ch.base_url, target, error);
        if (!resolved) {
            ChannelBoard::record_failure(*ch.state, now_unix_ms());
            tried.push_back(ch.id);
            last = relay::ForwardOutcome{relay::ForwardOutcome::retry, false, 0, 502, "upstream_error", error};
            last.replay_reason = obs::ReplayReason::connect_failed;  // nothing was sent
            continue;
        }
        std::string mapped_body;
        relay::ForwardPlan plan = plan_for(req, ch, target, mapped_body);
        plan.retry_allowed = attempt < retries && pick.others_usable;
        req.rc.attribution.channel_id = ch.id;
        if (attempt > 0)  // the request goes out again, on another channel
            if (obs::ShardMetrics* m = shard.obs().metrics) m->count_upstream_replay(last.replay_reason);
        last = co_await relay::forward_request(req.cs, req.rc, plan);
        if (last.first_byte_timeout) [[unlikely]]
            if (obs::ShardMetrics* m = shard.obs().metrics) m->count_first_byte_timeout(m->channel_index(ch.id));
        if (last.kind == relay::ForwardOutcome::answered) {
            record_answer(req.rc, *ch.state);
            co_return Outcome::finished(last.keep_alive);
        }
        ChannelBoard::record_failure(*ch.state, now_unix_ms());
        tried.push_back(ch.id);
        ++shard.counters().upstream_retries;
    }
    co_return req.reject_with(last.status ? last.status : 502,
                              last.code.empty() ? std::string_view("upstream_error") : last.code,
                              last.message.empty() ? std::string("upstream failed") : std::move(last.message));
}

}  // namespace rr::gateway

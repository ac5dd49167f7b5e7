// The gateway's request path, one stage per file (docs/ARCHITECTURE.md draws it):
//
//   admit (route.cpp)  ->  block list, then key (auth.cpp)  ->  rpm/tpm/quota (limits.cpp)
//   ->  body and model (body.cpp)  ->  key slot (key_slot.cpp)  ->  global token
//   (upstream.cpp, waiting in token.cpp)  ->  channel (channel.cpp)  ->  relay,
//   retrying other channels, and record (upstream.cpp)
//
// ShardGateway::serve (serve.cpp) runs them in that order; each returns an Outcome:
// go on, or end the request. The token comes before the channel: a request waiting
// for a token holds no channel slot. Every slot and token is an RAII guard in the
// GatewayRequest, so every way out gives it back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../grant_wait.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/gateway/request_body.hpp"
#include "ringrelay/relay/session.hpp"
#include "ringrelay/relay/whole_body.hpp"
#include "ringrelay/store/ops.hpp"

namespace rr::gateway {

// count_tokens is relayed like relay; only the limits it is counted toward differ
// (--count-tokens-exempt). response_by_id: GET/DELETE /v1/responses/{id}, GET
// .../input_items, POST .../cancel (no model in the body: routed by the response id,
// affinity.cpp).
enum class Route : std::uint8_t { relay, count_tokens, models, readyz, response_by_id, not_found };

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
    std::uint64_t key_hash = 0;     // KeySlots / RateLimits key
    bool allows(std::string_view model) const noexcept {
        return models.empty() || store::ListView(models).contains(model);
    }
};

// How a stage ended: the request goes on to the next stage (next), the gateway
// answers it with an error (reject), or it is over (done: answered already, or the
// client is gone) and keep_alive says whether the connection may go on. Trivially
// copied between the stages: a message made up at run time lives in the
// GatewayRequest (reject_with).
struct Outcome {
    enum Kind : std::uint8_t { next, reject, done } kind = next;
    int status = 0;
    std::string_view code;
    std::string_view message;
    std::uint32_t retry_after_s = 0;  // reject: a Retry-After header, 0 for none
    bool body_read = true;            // reject: the body is off the wire (else the connection closes)
    bool keep_alive = false;          // done

    bool goes_on() const noexcept { return kind == next; }
    static Outcome proceed() { return {}; }
    static Outcome rejected(int status, std::string_view code, std::string_view message, bool body_read = true) {
        Outcome o;
        o.kind = reject;
        o.status = status;
        o.code = code;
        o.message = message;
        o.body_read = body_read;
        return o;
    }
    static Outcome finished(bool keep_alive) {
        Outcome o;
        o.kind = done;
        o.keep_alive = keep_alive;
        return o;
    }
};

// One request's state on its way through the stages. Members are declared in the
// order they are taken; destroyed in reverse, the token goes back before the key slot.
struct GatewayRequest {
    GatewayRequest(ShardGateway& g, relay::ClientSession& c, relay::RequestContext& r) noexcept
        : sg(g), cs(c), rc(r), shard(c.shard) {}
    ~GatewayRequest() {
        if (body.capacity() != 0) shard.buffers().give(std::move(body));
    }
    GatewayRequest(const GatewayRequest&) = delete;
    GatewayRequest& operator=(const GatewayRequest&) = delete;

    // A rejection whose message is made up now (it names the model, the path, ...).
    Outcome reject_with(int status, std::string_view code, std::string text, bool read = true) {
        message = std::move(text);
        return Outcome::rejected(status, code, message, read);
    }

    ShardGateway& sg;
    relay::ClientSession& cs;
    relay::RequestContext& rc;
    relay::Shard& shard;

    Route route = Route::not_found;
    std::optional<store::Sha256> secret_hash;  // of the presented key, if any
    std::string path;                          // the request's path (the head's views die at admit)
    bool creates_response = false;             // POST /v1/responses: remember its id's channel
    std::string response_id;                   // Route::response_by_id: the {id} of the path
    std::string pinned_channel;                // the channel that created response_id (affinity.cpp)
    KeyInfo key;
    std::string body;  // the whole request body, from shard.buffers()
    RequestFields fields;
    std::string message;  // of a rejection made up at run time (reject_with)
    KeySlotGuard key_slot;
    TokenGuard token;
    // The client's session (session_hash of its id; 0: none) and the place in
    // --session-from of the source that named it (an earlier source found later wins).
    std::uint64_t session = 0;
    std::size_t session_rank = SIZE_MAX;

    // A count_tokens call that --count-tokens-exempt keeps out of the key's RPM and
    // concurrency: agents fire dozens at start-up, next to a running request.
    bool exempt_from_key_limits() const noexcept {
        return route == Route::count_tokens && shard.settings().count_tokens_exempt;
    }
};

// ---- the stages, in order -------------------------------------------------------

// route.cpp: routes the head, hashes the presented secret (and wipes it), captures
// and consumes the head. Answers /readyz and unknown paths.
Outcome admit(GatewayRequest& req);
io::Task<Outcome> answer_readyz(GatewayRequest& req);
// GET /v1/models: the models the key may use (after auth).
io::Task<Outcome> answer_models(GatewayRequest& req);

// session.cpp: the request's session, from the head's fields (at admit, while the
// head's views live) and from the body's (at accept_body); see --session-from.
void read_session_header(GatewayRequest& req);
void read_session_body(GatewayRequest& req);

// auth.cpp: the block list (the client's address), then the key, in one read snapshot.
Outcome authorize(GatewayRequest& req);

// limits.cpp: RPM, TPM and quota, before the request takes any slot.
Outcome check_limits(GatewayRequest& req);

// body.cpp: prepare_body takes req.body's buffer and returns the limits to read it with;
// then what was read: its model and stream flag, or why the request is refused.
relay::WholeBodyLimits prepare_body(GatewayRequest& req);
Outcome accept_body(GatewayRequest& req, relay::WholeBody& read);

// affinity.cpp: for Route::response_by_id, the channel that created the response
// (req.pinned_channel), or normal routing for an id the gateway does not know; 404
// response_not_found for an id another key created.
Outcome route_by_response_id(GatewayRequest& req);

// key_slot.cpp: at most max_concurrency in flight per key; up to max_wait wait in order.
io::Task<Outcome> take_key_slot(GatewayRequest& req);

// token.cpp: the global token (upstream_max_concurrent) when acquire() said queued or
// queue_full: waits in the pool's bounded queue, or refuses. waiter and gw are the
// ones acquire() was given.
io::Task<Outcome> wait_for_token(GatewayRequest& req, TokenStatus status, TokenWaiter& waiter, GrantWait& gw);

// upstream.cpp: token, channel, relay; other channels while nothing reached the
// client; the usage the response reports goes to the limits. Always ends the request.
io::Task<Outcome> relay_upstream(GatewayRequest& req);

// ---- shared by the stages ------------------------------------------------------

// channel.cpp: a channel chosen for one attempt, or why none could be.
struct Pick {
    enum Kind : std::uint8_t { chosen, not_found, none_usable } kind = none_usable;
    ChannelChoice channel;
    ChannelSlot slot;
    bool others_usable = false;  // another untried channel could take a retry
};
Pick pick_channel_for(GatewayRequest& req, const std::vector<std::string>& tried);
// What a pick could come to, without taking a slot (see channel.cpp).
Pick::Kind channel_outlook(GatewayRequest& req);
// 404 model_not_found or 503 no_available_channel.
Outcome refuse_pick(GatewayRequest& req, Pick::Kind kind);

// waits.cpp: a queued key slot or token wait.
enum class WaitEnd : std::uint8_t { granted, timed_out, client_gone };
// Waits on gw until deadline; a streaming request gets its SSE head before the wait
// and a ping every 15 s during it (REFERENCE.md section 3). Ends early if the client goes.
io::Task<GrantWait::Result> wait_for_grant(relay::ClientSession& cs, relay::RequestContext& rc, GrantWait& gw,
                                           std::uint64_t deadline);
inline WaitEnd given_up(GrantWait::Result r) noexcept {
    return r == GrantWait::Result::timed_out ? WaitEnd::timed_out : WaitEnd::client_gone;
}

}  // namespace rr::gateway

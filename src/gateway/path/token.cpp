// Stage 6, the global token when TokenPool::acquire() did not grant one at once (the
// usual case, taken in relay_upstream without a coroutine frame or a store read): a
// model no channel could take is answered without a wait; the rest wait in the
// pool's bounded FIFO queue.
#include "path.hpp"
#include "ringrelay/relay/request_log.hpp"

namespace rr::gateway {
namespace {

// Ends a queued acquire whose wait ended with r; on granted, token holds it. A grant
// that wins the race against our cancel lands in a guard that gives it back.
io::Task<WaitEnd> settle_token_wait(GrantWait::Result r, TokenPool& tokens, TokenWaiter& waiter, GrantWait& gw,
                                    TokenGuard& token) {
    if (r != GrantWait::Result::granted && tokens.cancel(waiter) == CancelResult::cancelled) co_return given_up(r);
    if (r != GrantWait::Result::granted) co_await gw.arrival();  // lost the race: the grant is coming
    TokenGuard granted(tokens);
    if (r != GrantWait::Result::granted) co_return given_up(r);  // granted gives the lost race's token back
    token = std::move(granted);
    co_return WaitEnd::granted;
}

}  // namespace

io::Task<Outcome> wait_for_token(GatewayRequest& req, TokenStatus status, TokenWaiter& waiter, GrantWait& gw) {
    relay::Shard& shard = req.shard;
    TokenPool& tokens = req.sg.shared().tokens;
    const Pick::Kind outlook = channel_outlook(req);
    if (outlook != Pick::chosen) {
        if (status == TokenStatus::queued)
            co_await settle_token_wait(GrantWait::Result::interrupted, tokens, waiter, gw, req.token);
        co_return refuse_pick(req, outlook);
    }
    if (status == TokenStatus::queue_full)
        co_return Outcome::rejected(429, "upstream_queue_full", "upstream queue is full");
    log_debug_event(shard.obs(), relay::DebugEvent::upstream_queue, req.rc, tokens.queue_depth());
    const std::uint64_t started = shard.loop().now_ms();
    const GrantWait::Result r =
        co_await wait_for_grant(req.cs, req.rc, gw, started + shard.settings().upstream_queue_timeout_ms);
    const WaitEnd end = co_await settle_token_wait(r, tokens, waiter, gw, req.token);
    if (end == WaitEnd::client_gone) co_return Outcome::finished(false);
    req.rc.attribution.queue_ms += shard.loop().now_ms() - started;
    if (end == WaitEnd::timed_out)
        co_return Outcome::rejected(429, "queue_timeout", "timeout waiting for upstream concurrency slot");
    co_return Outcome::proceed();
}

}  // namespace rr::gateway

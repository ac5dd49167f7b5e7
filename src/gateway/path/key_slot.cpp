// Stage 5, take_key_slot: at most max_concurrency requests of a key in flight; up
// to max_wait more wait in order, the rest get 429 key_in_use at once.
#include "path.hpp"
#include "ringrelay/relay/request_log.hpp"

namespace rr::gateway {
namespace {

// Waits for the slot KeySlots queued us for; on success slot holds it. A grant that
// wins the race against our cancel is ours too: it lands in a guard that gives it
// back as the wait returns, so no way out can forget it.
io::Task<WaitEnd> wait_for_key(GatewayRequest& req, KeyWaiter& waiter, GrantWait& gw, std::uint64_t deadline) {
    KeySlots& keys = req.sg.shared().keys;
    const GrantWait::Result r = co_await wait_for_grant(req.cs, req.rc, gw, deadline);
    if (r != GrantWait::Result::granted && keys.cancel(waiter) == CancelResult::cancelled) co_return given_up(r);
    if (r != GrantWait::Result::granted) co_await gw.arrival();  // lost the race: the grant is coming
    KeySlotGuard granted(keys, waiter.lease());
    if (r != GrantWait::Result::granted) co_return given_up(r);  // granted gives the lost race's slot back
    req.key_slot = std::move(granted);
    co_return WaitEnd::granted;
}

}  // namespace

io::Task<Outcome> take_key_slot(GatewayRequest& req) {
    relay::Shard& shard = req.shard;
    KeySlots& keys = req.sg.shared().keys;
    const KeyInfo& key = req.key;
    if (req.exempt_from_key_limits()) co_return Outcome::proceed();
    GrantWait gw(shard.loop());
    KeyWaiter waiter(&GrantWait::on_grant, &gw);
    const std::uint64_t wait_started = shard.loop().now_ms();
    const KeyAcquireResult kr = keys.acquire(key.key_hash, key.max_concurrency, key.max_wait, waiter);
    if (kr.status == KeySlotStatus::busy) co_return Outcome::rejected(429, "key_in_use", "api key is already in use");
    if (kr.status == KeySlotStatus::granted) req.key_slot = KeySlotGuard(keys, kr.lease);
    if (kr.status == KeySlotStatus::queued) {
        const std::uint64_t deadline = shard.loop().now_ms() + shard.settings().upstream_queue_timeout_ms;
        const WaitEnd end = co_await wait_for_key(req, waiter, gw, deadline);
        if (end == WaitEnd::client_gone) co_return Outcome::finished(false);
        if (end == WaitEnd::timed_out) co_return Outcome::rejected(429, "key_in_use", "api key is already in use");
    }
    req.rc.attribution.queue_ms = shard.loop().now_ms() - wait_started;
    log_debug_event(shard.obs(), relay::DebugEvent::key_acquired, req.rc, keys.in_flight(key.key_hash));
    co_return Outcome::proceed();
}

}  // namespace rr::gateway

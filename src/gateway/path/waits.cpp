// The waits of the key-slot and token stages: a GrantWait the client's going away
// interrupts, with SSE pings for a streaming request.
#include "path.hpp"
#include "ringrelay/relay/early_stream.hpp"

namespace rr::gateway {
namespace {

// A client gone (or a drain's cut) ends the wait with interrupted.
struct InterruptWait final : relay::ClientGoneHandler {
    explicit InterruptWait(GrantWait& w) noexcept : gw(w) {}
    GrantWait& gw;
    void stop() noexcept override { gw.interrupt(); }
};

io::Task<GrantWait::Result> wait_with_pings(relay::ClientSession& cs, relay::RequestContext& rc, GrantWait& gw,
                                            std::uint64_t deadline) {
    io::Loop& loop = cs.shard.loop();
    if (rc.attribution.stream && !rc.stream_started() && co_await relay::start_early_stream(cs, rc) < 0) {
        gw.interrupt();  // the client is gone
        co_return co_await gw.wait(deadline);
    }
    for (;;) {
        const std::uint64_t next_ping = rc.attribution.stream ? loop.now_ms() + relay::kStreamPingIntervalMs : deadline;
        const GrantWait::Result r = co_await gw.wait(std::min(deadline, next_ping));
        if (r != GrantWait::Result::timed_out || loop.now_ms() >= deadline) co_return r;
        if (co_await relay::send_stream_ping(cs, rc) < 0) gw.interrupt();
    }
}

}  // namespace

io::Task<GrantWait::Result> wait_for_grant(relay::ClientSession& cs, relay::RequestContext& rc, GrantWait& gw,
                                           std::uint64_t deadline) {
    InterruptWait interrupt_on_gone(gw);
    relay::StopWhenClientGone watch(cs, interrupt_on_gone);
    co_return co_await wait_with_pings(cs, rc, gw, deadline);
}

}  // namespace rr::gateway

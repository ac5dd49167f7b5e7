#include "ringrelay/gateway/health_checker.hpp"

#include <cerrno>
#include <cstring>

#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/relay/head_reader.hpp"
#include "ringrelay/relay/inbound.hpp"
#include "ringrelay/common.hpp"
#include "ringrelay/http.hpp"
#include "ringrelay/obs/log.hpp"
#include "ringrelay/store/ops.hpp"
#include "ringrelay/relay/shard.hpp"

namespace rr::gateway {

// A probe is a small upstream exchange: it reads the answer with relay's head reader.
using relay::HeadOutcome;
using relay::HeadRead;
using relay::Inbound;
using relay::read_head;
namespace {

using gateway::ChannelBoard;

// The credential as the request path sends it; Anthropic also wants a version.
std::string credential_headers(const store::ChannelView& c) {
    if (c.type() == store::ChannelType::anthropic)
        return cat("x-api-key: ", c.api_key(), "\r\nanthropic-version: 2023-06-01\r\n");
    return cat("Authorization: Bearer ", c.api_key(), "\r\n");
}

std::string probe_request(std::string_view base_path, std::string_view health_path, std::string_view host_header,
                          std::string_view credentials) {
    return cat("GET ", base_path, health_path, " HTTP/1.1\r\nHost: ", host_header, "\r\n", credentials,
               "User-Agent: ringrelay-health-check\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
}

std::string os_error(int err) {
    return err == -ETIMEDOUT ? std::string("timed out") : std::string(std::strerror(-err));
}

}  // namespace

void HealthChecker::Nap::wake() noexcept {
    woken_ = true;
    if (!handle_) return;
    loop_.timers().cancel(*this);
    loop_.defer(std::exchange(handle_, {}));
}

void HealthChecker::Nap::expire(io::Timer* t) {
    auto* nap = static_cast<Nap*>(t);
    std::exchange(nap->handle_, {}).resume();
}

HealthChecker::HealthChecker(relay::Shard& shard, ShardGateway& gateway)
    : shard_(shard), gateway_(gateway), reader_(*gateway.shared().env),
      nap_(shard.loop()) {}

void HealthChecker::start() {
    ticking_ = true;
    io::spawn(run());
}

void HealthChecker::stop() noexcept {
    if (stopping_) return;
    stopping_ = true;
    nap_.wake();
    for (auto& [id, e] : entries_)
        if (e.socket != nullptr) e.socket->abort();
}

io::Task<void> HealthChecker::run() {
    while (!stopping_) {
        scan();
        co_await nap_.until(shard_.loop().now_ms() + kTickMs);
    }
    ticking_ = false;
    if (idle()) shard_.service_idle();
}

// Starts the probes that are due. Synchronous: the snapshot ends before any probe
// runs (each copies what it needs).
void HealthChecker::scan() {
    for (auto& [id, e] : entries_) e.seen = false;
    {
        store::ReadScope scope(reader_);
        if (!scope.ok()) return;  // the store is unwell: keep the last verdicts
        const std::uint64_t now = shard_.loop().now_ms();
        reader_.for_each_channel([&](const store::ChannelView& c) {
            if (!c.enabled() || c.health_path().empty()) return;
            Entry& e = entries_[std::string(c.id())];
            e.seen = true;
            if (e.in_flight || now < e.next_due_ms) return;
            const store::ChannelSpec spec = store::spec_of(c);  // defaults for older records
            Probe p{std::string(c.id()), c.updated_at_ms(), std::string(c.base_url()), std::string(c.health_path()),
                    credential_headers(c), spec.health_timeout_ms, spec.health_interval_ms};
            e.in_flight = true;
            ++probes_in_flight_;
            ++probes_started_;
            io::spawn(check(std::move(p)));
        });
    }
    forget_unseen();
}

// Channels whose checks were turned off, that were disabled or removed: their
// board state no longer carries what the last checks said.
void HealthChecker::forget_unseen() {
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.seen || it->second.in_flight) {
            ++it;
            continue;
        }
        ChannelBoard::clear_health(gateway_.channel_state(it->first));
        it = entries_.erase(it);
    }
}

io::Task<void> HealthChecker::check(Probe p) {
    Entry& e = entries_[p.id];  // stays: entries in flight are never erased
    const Result r = co_await probe(p, e);
    e.in_flight = false;
    e.next_due_ms = shard_.loop().now_ms() + p.interval_ms;
    --probes_in_flight_;
    if (!r.aborted && !stopping_) record(p, r);
    if (idle()) shard_.service_idle();
}

io::Task<HealthChecker::Result> HealthChecker::probe(const Probe& p, Entry& e) {
    io::Loop& loop = shard_.loop();
    const std::uint64_t deadline = loop.now_ms() + p.timeout_ms;
    Result r;
    upstream::TargetRef target;  // keeps the pool target alive while the probe runs
    bool resolved = gateway_.targets().known_target(p.id, p.updated_at_ms, target);
    if (!resolved) resolved = co_await gateway_.targets().target_for(p.id, p.updated_at_ms, p.base_url, target, r.error);
    if (!resolved) co_return r;
    const upstream::UpstreamTarget& t = shard_.pool().target(target.id());
    const std::string request = probe_request(t.base_path, p.health_path, t.host_header, p.credential_headers);

    upstream::Acquired a = co_await shard_.pool().connect(target.id(), deadline);
    if (!a.conn) {
        r.error = a.reason.empty() ? cat("connect failed: ", os_error(a.error)) : a.reason;
        co_return r;
    }
    if (stopping_) {
        a.conn.discard();
        r.aborted = true;
        co_return r;
    }
    io::Socket& sock = *a.conn->socket;
    e.socket = &sock;
    const int sent = co_await sock.send(request, deadline);
    HeadRead hr{HeadOutcome::failed, {}, false, sent};
    http::ResponseHead resp;
    if (sent == 0) {
        Inbound in(&sock);
        hr = co_await read_head(in, [&](std::string_view b) { return http::parse_response(b, resp, false); },
                                deadline);
    }
    e.socket = nullptr;
    r.aborted = sock.aborted();
    a.conn.discard();  // Connection: close was asked for
    switch (hr.outcome) {
    case HeadOutcome::complete:
        r.status = resp.status;
        r.ok = resp.status >= 200 && resp.status < 300;
        if (!r.ok) r.error = cat("answered ", std::to_string(resp.status));
        break;
    case HeadOutcome::timeout: r.error = "timed out"; break;
    case HeadOutcome::parse_error: r.error = "invalid response head"; break;
    case HeadOutcome::closed: r.error = "closed the connection before answering"; break;
    case HeadOutcome::failed: r.error = os_error(hr.io_error); break;
    }
    co_return r;
}

void HealthChecker::record(const Probe& p, const Result& r) {
    ChannelBoard::State& s = gateway_.channel_state(p.id);
    const ChannelBoard::Health before = s.health.load(std::memory_order_relaxed);
    const ChannelBoard::Health after = ChannelBoard::record_check(s, r.ok, r.status, now_unix_ms());
    if (after == before) return;
    if (after == ChannelBoard::Health::down)
        obs::log(obs::Level::warn, "channel failed its health checks: not used until they pass",
                 {{"channel", p.id}, {"path", p.health_path}, {"error", r.error}});
    else if (before == ChannelBoard::Health::down)
        obs::log(obs::Level::info, "channel passes its health checks again: back in use",
                 {{"channel", p.id}, {"path", p.health_path}});
}

}  // namespace rr::gateway

#include "ringrelay/relay/request_log.hpp"

#include <time.h>

#include "ringrelay/obs/access_log.hpp"
#include "ringrelay/obs/metrics.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::relay {

std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
}

void finish_request(ShardObs& obs, const RequestContext& rc, std::uint64_t end_ns) noexcept {
    if (rc.status == 0) return;  // nothing was served (the client left before a whole head)
    const obs::RequestAttribution& who = rc.attribution;
    const std::uint64_t latency_ns = end_ns > rc.start_ns ? end_ns - rc.start_ns : 0;
    const std::uint64_t upstream_ns = rc.upstream_ms * 1'000'000ull;
    if (obs::ShardMetrics* m = obs.metrics) {
        m->record_request(rc.status, rc.error_code.empty() ? obs::ErrorCode::none : obs::error_code_from_name(rc.error_code),
                          latency_ns);
        if (rc.upstream_status != 0) {
            const std::string_view channel = who.channel_id.empty() ? std::string_view("relay") : who.channel_id;
            // Not counted here: the upstream pool counts every request it sends
            // (Shard::on_upstream_request), replays and health probes included.
            m->observe_upstream(m->channel_index(channel), upstream_ns);
        }
        if (who.queue_ms != 0) m->observe_queue_wait(who.queue_ms * 1'000'000ull);
        if (who.usage == obs::UsageReport::unknown) m->count_usage_unknown();
    }
    if (obs::AccessLogProducer* log = obs.log) {
        if (!log->enabled(obs::Level::info)) return;
        obs::AccessRecord r;
        const std::string_view line = rc.captured.line;
        r.method.assign(line.substr(0, rc.captured.method_len));
        r.set_path(line.size() > rc.captured.method_len ? line.substr(rc.captured.method_len + 1) : std::string_view());
        r.trace_id.assign(rc.request_id);
        r.api_key_id.assign(who.api_key_id);
        r.channel_id.assign(who.channel_id);
        r.model.assign(who.model);
        r.status = static_cast<std::uint16_t>(rc.status);
        r.upstream_status = static_cast<std::uint16_t>(rc.upstream_status);
        r.stream = who.stream;
        r.latency_ns = latency_ns;
        r.queue_ns = who.queue_ms * 1'000'000ull;
        r.upstream_ns = upstream_ns;
        r.bytes_in = rc.bytes_in;
        r.bytes_out = rc.bytes_out;
        r.usage = who.usage;
        r.prompt_tokens = who.prompt_tokens;
        r.completion_tokens = who.completion_tokens;
        r.error_code = rc.error_code.empty() ? obs::ErrorCode::none : obs::error_code_from_name(rc.error_code);
        log->push(r);
    }
}

void log_debug_event(ShardObs& obs, DebugEvent e, const RequestContext& rc, std::uint32_t count) noexcept {
    obs::AccessLogProducer* log = obs.log;
    if (log == nullptr || !log->enabled(obs::Level::debug)) return;
    const obs::EventKind kind = e == DebugEvent::key_acquired   ? obs::EventKind::key_acquired
                                : e == DebugEvent::key_released ? obs::EventKind::key_released
                                                                : obs::EventKind::upstream_queue;
    obs::AccessRecord r = obs::AccessRecord::event(kind);
    r.trace_id.assign(rc.request_id);
    r.api_key_id.assign(rc.attribution.api_key_id);
    r.model.assign(rc.attribution.model);
    r.count = count;
    log->push(r);
}

}  // namespace rr::relay

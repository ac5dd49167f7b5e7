#include "ringrelay/obs/metrics.hpp"

#include <charconv>
#include <cmath>
#include <map>

namespace rr::obs {
namespace {

constexpr std::array<std::string_view, kErrorCodeCount> kErrorCodeNames = {
    "none",
    "invalid_api_key",
    "key_revoked",
    "key_expired",
    "ip_blocked",
    "model_not_allowed",
    "key_in_use",
    "upstream_queue_full",
    "queue_timeout",
    "rate_limited",
    "quota_exceeded",
    "invalid_request",
    "model_not_found",
    "no_available_channel",
    "upstream_error",
    "upstream_timeout",
    "shutting_down",
    "bad_request",
    "request_timeout",
    "uri_too_long",
    "header_too_large",
    "body_too_large",
    "version_not_supported",
    "not_implemented",
    "not_found",
    "store_unavailable",
    "invalid_admin_token",
    "method_not_allowed",
    "store_error",
    "backup_failed",
    "unavailable",
    "other",
};

// The le label of each bucket, written the way Prometheus' own clients write them.
constexpr std::array<std::string_view, kDurationBucketCount> kDurationBucketLabels = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60"};

constexpr std::uint32_t status_key(ErrorCode code, int status) noexcept {
    return (static_cast<std::uint32_t>(code) + 1) << 16 | (static_cast<std::uint32_t>(status) & 0xffff);
}

// Fibonacci hashing: the keys differ mostly in their low bits.
std::size_t status_slot_of(std::uint32_t key, std::size_t slots) noexcept {
    return static_cast<std::size_t>((key * 2654435769u) >> 24) & (slots - 1);
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// A sample value in the 0.0.4 grammar: Go float syntax plus NaN, +Inf, -Inf.
void append_double(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, r.ptr);
    }
}

void append_seconds(std::string& out, std::uint64_t ns) { append_double(out, static_cast<double>(ns) / 1e9); }

void append_family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// `labels` is either empty or complete pairs ("a=\"x\"") without braces.
void append_sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t v) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out += ' ';
    append_uint(out, v);
    out += '\n';
}

void append_gauge_sample(std::string& out, std::string_view name, std::string_view labels, double v) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out += ' ';
    append_double(out, v);
    out += '\n';
}

// A family of one sample without labels, so the name is written once for both. The
// value's type picks the format: integers as counted, doubles in the float grammar.
void append_single(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   std::uint64_t v) {
    append_family(out, name, type, help);
    append_sample(out, name, "", v);
}
void append_single(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   double v) {
    append_family(out, name, type, help);
    append_gauge_sample(out, name, "", v);
}

std::string label_pair(std::string_view name, std::string_view value) {
    std::string s(name);
    s += "=\"";
    append_label_value(s, value);
    s += '"';
    return s;
}

// _bucket (cumulative, then +Inf), _sum, _count of one histogram series. `labels` are
// the series' own labels ("" or pairs); le goes last.
void append_histogram(std::string& out, std::string_view name, std::string_view labels, const HistogramSnapshot& h) {
    const std::string bucket = std::string(name) + "_bucket{" + std::string(labels) + (labels.empty() ? "" : ",");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kDurationBucketCount; ++i) {
        cumulative += h.buckets[i];
        out.append(bucket).append("le=\"").append(kDurationBucketLabels[i]).append("\"} ");
        append_uint(out, cumulative);
        out += '\n';
    }
    cumulative += h.buckets[kDurationBucketCount];
    out.append(bucket).append("le=\"+Inf\"} ");
    append_uint(out, cumulative);
    out += '\n';
    out.append(name).append("_sum");
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out += ' ';
    append_seconds(out, h.sum_ns);
    out += '\n';
    append_sample(out, std::string(name) + "_count", labels, cumulative);
}

// The one-sample families that sum a ShardTotals field over the shards, in scrape order.
struct ShardTotalMetric {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    std::uint64_t ShardTotals::*field;
};
constexpr ShardTotalMetric kShardTotalMetrics[] = {
    {"ringrelay_connections_active", "gauge", "Open client connections.", &ShardTotals::connections_active},
    {"ringrelay_upstream_connections_total", "counter", "Upstream connections opened.",
     &ShardTotals::upstream_connections},
    {"ringrelay_upstream_requests_total", "counter",
     "Requests sent upstream (divided by connections opened: the reuse ratio).", &ShardTotals::upstream_requests},
    {"ringrelay_usage_unknown_total", "counter",
     "Billable answers (2xx to a model POST) that carried no token usage: nothing was counted for them.",
     &ShardTotals::usage_unknown},
    {"ringrelay_enobufs_total", "counter", "Times a shard's provided-buffer ring ran dry.", &ShardTotals::enobufs},
    {"ringrelay_cq_overflows_total", "counter", "io_uring completion queue overflows.",
     &ShardTotals::cq_overflows},
    {"ringrelay_recv_spills_total", "counter",
     "Received buffers copied out of a shard's ring because it was more than half in use.", &ShardTotals::recv_spills},
    {"ringrelay_recv_buffers_in_use", "gauge",
     "Provided receive buffers held by sockets (all shards; as of each shard's last request).",
     &ShardTotals::recv_buffers_in_use},
};

}  // namespace

std::string_view replay_reason_name(ReplayReason r) noexcept {
    switch (r) {
    case ReplayReason::connect_failed: return "connect_failed";
    case ReplayReason::stale_connection: return "stale_connection";
    case ReplayReason::upstream_refused: return "upstream_refused";
    case ReplayReason::no_response: return "no_response";
    case ReplayReason::upstream_failed: return "upstream_failed";
    case ReplayReason::first_byte_timeout: return "first_byte_timeout";
    case ReplayReason::count_: break;
    }
    return "other";
}

std::string_view error_code_name(ErrorCode code) noexcept {
    const auto i = static_cast<std::size_t>(code);
    return i < kErrorCodeCount ? kErrorCodeNames[i] : kErrorCodeNames.back();
}

ErrorCode error_code_from_name(std::string_view name) noexcept {
    if (name.empty()) return ErrorCode::none;
    for (std::size_t i = 0; i < kErrorCodeCount; ++i)
        if (kErrorCodeNames[i] == name) return static_cast<ErrorCode>(i);
    return ErrorCode::other;
}

bool is_rejection(ErrorCode code) noexcept {
    return code != ErrorCode::none && code != ErrorCode::upstream_error && code != ErrorCode::upstream_timeout;
}

void append_label_value(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
}

// ---- histograms -------------------------------------------------------------------

std::uint64_t HistogramSnapshot::count() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t b : buckets) n += b;
    return n;
}

std::size_t DurationHistogram::bucket_for(std::uint64_t ns) noexcept {
    std::size_t below = 0;
    for (std::uint64_t bound : kDurationBucketsNs) below += ns > bound ? 1 : 0;
    return below;
}

void DurationHistogram::observe(std::uint64_t ns) noexcept {
    buckets_[bucket_for(ns)].add();
    sum_ns_.add(ns);
}

void DurationHistogram::add_to(HistogramSnapshot& out) const noexcept {
    for (std::size_t i = 0; i < buckets_.size(); ++i) out.buckets[i] += buckets_[i].value();
    out.sum_ns += sum_ns_.value();
}

// ---- one shard --------------------------------------------------------------------

ShardMetrics::ShardMetrics(Metrics& owner, unsigned shard_index) : owner_(owner), index_(shard_index) {}

ShardMetrics::~ShardMetrics() {
    for (auto& chunk : channel_chunks_) delete chunk.load(std::memory_order_acquire);
}

void ShardMetrics::record_request(int status, ErrorCode code, std::uint64_t duration_ns) noexcept {
    requests_.add();
    count_status(status, code);
    if (is_rejection(code)) rejected_[static_cast<std::size_t>(code)].add();
    request_duration_.observe(duration_ns);
}

void ShardMetrics::count_status(int status, ErrorCode code) noexcept {
    if (static_cast<std::size_t>(code) >= kErrorCodeCount) code = ErrorCode::other;
    const std::uint32_t key = status_key(code, status);
    std::size_t i = status_slot_of(key, kStatusSlots);
    for (;;) {
        const std::uint32_t k = status_slots_[i].key.load(std::memory_order_relaxed);
        if (k == key) {
            status_slots_[i].count.add();
            return;
        }
        if (k == 0) break;
        i = (i + 1) & (kStatusSlots - 1);
    }
    if (status_slots_used_ >= kStatusSlotsMaxUsed) {
        status_overflow_[static_cast<std::size_t>(code)].add();
        return;
    }
    ++status_slots_used_;
    status_slots_[i].count.add();
    status_slots_[i].key.store(key, std::memory_order_release);
}

ShardMetrics::ChannelSeries& ShardMetrics::channel_series(ChannelIndex channel) {
    if (channel > kMaxChannels) channel = kMaxChannels;
    const std::size_t chunk = channel / kChannelChunk;
    ChannelChunk* c = channel_chunks_[chunk].load(std::memory_order_relaxed);
    if (c == nullptr) c = grow_channels(chunk);
    return (*c)[channel % kChannelChunk];
}

void ShardMetrics::observe_upstream(ChannelIndex channel, std::uint64_t duration_ns) {
    channel_series(channel).upstream.observe(duration_ns);
}

void ShardMetrics::count_first_byte_timeout(ChannelIndex channel) {
    channel_series(channel).first_byte_timeouts.add();
}

ShardMetrics::ChannelChunk* ShardMetrics::grow_channels(std::size_t chunk) {
    auto* c = new ChannelChunk();
    channel_chunks_[chunk].store(c, std::memory_order_release);
    return c;
}

ChannelIndex ShardMetrics::channel_index(std::string_view label) {
    if (auto it = channel_cache_.find(label); it != channel_cache_.end()) return it->second;
    const ChannelIndex index = owner_.register_channel(label);
    channel_cache_.emplace(std::string(label), index);
    return index;
}

ShardTotals ShardMetrics::totals() const noexcept {
    ShardTotals t;
    t.requests = requests_.value();
    t.connections_active = connections_active_.value();
    t.upstream_connections = upstream_connections_.value();
    t.upstream_requests = upstream_requests_.value();
    t.usage_unknown = usage_unknown_.value();
    t.enobufs = enobufs_.value();
    t.cq_overflows = cq_overflows_.value();
    t.recv_spills = recv_spills_.value();
    t.recv_buffers_in_use = recv_buffers_in_use_.value();
    return t;
}

// ---- the registry and the scrape ---------------------------------------------------

Metrics::Metrics(unsigned shard_count, std::string version) : version_(std::move(version)) {
    shards_.reserve(shard_count);
    for (unsigned i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<ShardMetrics>(*this, i));
}

Metrics::~Metrics() = default;

ChannelIndex Metrics::register_channel(std::string_view label) {
    std::lock_guard lk(mu_);
    if (auto it = label_index_.find(std::string(label)); it != label_index_.end()) return it->second;
    if (labels_.size() >= kMaxChannels) return kMaxChannels;
    const auto index = static_cast<ChannelIndex>(labels_.size());
    labels_.emplace_back(label);
    label_index_.emplace(std::string(label), index);
    return index;
}

void Metrics::set_gauge_source(GaugeSource source) {
    std::lock_guard lk(mu_);
    gauge_source_ = std::move(source);
}

std::vector<std::string> Metrics::channel_labels() const {
    std::lock_guard lk(mu_);
    return labels_;
}

void Metrics::render_histograms(std::string& out) const {
    HistogramSnapshot total;
    for (const auto& s : shards_) s->request_duration_.add_to(total);
    append_family(out, "ringrelay_request_duration_seconds", "histogram",
                  "Time from a request's first byte to its last response byte.");
    append_histogram(out, "ringrelay_request_duration_seconds", "", total);

    HistogramSnapshot wait;
    for (const auto& s : shards_) s->queue_wait_.add_to(wait);
    append_family(out, "ringrelay_queue_wait_seconds", "histogram", "Time requests waited for a global upstream token.");
    append_histogram(out, "ringrelay_queue_wait_seconds", "", wait);

    append_family(out, "ringrelay_upstream_duration_seconds", "histogram",
                  "Time of upstream exchanges, per channel.");
    const std::vector<std::string> labels = channel_labels();
    for (std::size_t i = 0; i < labels.size(); ++i)
        append_histogram(out, "ringrelay_upstream_duration_seconds", label_pair("channel", labels[i]),
                         upstream_histogram(i));
    // Past kMaxChannels labels, the shared "other" series; shown once used.
    if (const HistogramSnapshot other = upstream_histogram(kMaxChannels); other.count() != 0)
        append_histogram(out, "ringrelay_upstream_duration_seconds", label_pair("channel", "other"), other);
}

HistogramSnapshot Metrics::upstream_histogram(ChannelIndex channel) const {
    HistogramSnapshot h;
    for (const auto& s : shards_)
        if (auto* c = s->channel_chunks_[channel / ShardMetrics::kChannelChunk].load(std::memory_order_acquire))
            (*c)[channel % ShardMetrics::kChannelChunk].upstream.add_to(h);
    return h;
}

std::uint64_t Metrics::first_byte_timeouts(ChannelIndex channel) const {
    std::uint64_t n = 0;
    for (const auto& s : shards_)
        if (auto* c = s->channel_chunks_[channel / ShardMetrics::kChannelChunk].load(std::memory_order_acquire))
            n += (*c)[channel % ShardMetrics::kChannelChunk].first_byte_timeouts.value();
    return n;
}

void Metrics::render_counters(std::string& out) const {
    // (code, status) -> count over all shards; std::map keeps the output stable.
    std::map<std::uint32_t, std::uint64_t> by_status;
    std::array<std::uint64_t, kErrorCodeCount> overflow{};
    std::array<std::uint64_t, kErrorCodeCount> rejected{};
    for (const auto& s : shards_) {
        for (const auto& slot : s->status_slots_) {
            const std::uint32_t key = slot.key.load(std::memory_order_acquire);
            if (key != 0) by_status[key] += slot.count.value();
        }
        for (std::size_t c = 0; c < kErrorCodeCount; ++c) {
            overflow[c] += s->status_overflow_[c].value();
            rejected[c] += s->rejected_[c].value();
        }
    }
    append_family(out, "ringrelay_requests_total", "counter",
                  "Requests answered, by gateway error code (none: the upstream answered) and status.");
    for (const auto& [key, count] : by_status) {
        const auto code = static_cast<ErrorCode>((key >> 16) - 1);
        std::string labels = label_pair("code", error_code_name(code)) + ",status=\"";
        append_uint(labels, key & 0xffff);
        labels += '"';
        append_sample(out, "ringrelay_requests_total", labels, count);
    }
    for (std::size_t c = 0; c < kErrorCodeCount; ++c)
        if (overflow[c] != 0)
            append_sample(out, "ringrelay_requests_total",
                          label_pair("code", kErrorCodeNames[c]) + ",status=\"other\"", overflow[c]);

    append_family(out, "ringrelay_rejected_total", "counter",
                  "Requests the gateway answered itself without an upstream answer, by code.");
    for (std::size_t c = 0; c < kErrorCodeCount; ++c)
        if (is_rejection(static_cast<ErrorCode>(c)))
            append_sample(out, "ringrelay_rejected_total", label_pair("code", kErrorCodeNames[c]), rejected[c]);

    ShardTotals sum;
    for (const auto& s : shards_) {
        const ShardTotals t = s->totals();
        for (const ShardTotalMetric& m : kShardTotalMetrics) sum.*m.field += t.*m.field;
    }
    for (const ShardTotalMetric& m : kShardTotalMetrics) append_single(out, m.name, m.type, m.help, sum.*m.field);
    append_family(out, "ringrelay_upstream_replays_total", "counter",
                  "Requests sent upstream again (same or another upstream), by reason.");
    for (std::size_t r = 0; r < kReplayReasonCount; ++r) {
        std::uint64_t n = 0;
        for (const auto& s : shards_) n += s->replays_[r].value();
        append_sample(out, "ringrelay_upstream_replays_total",
                      label_pair("reason", replay_reason_name(static_cast<ReplayReason>(r))), n);
    }
    append_family(out, "ringrelay_session_picks_total", "counter",
                  "Channels picked for requests of a session: at the session's home channel, or moved off it.");
    for (std::size_t r = 0; r < 2; ++r) {
        std::uint64_t n = 0;
        for (const auto& s : shards_) n += s->session_picks_[r].value();
        append_sample(out, "ringrelay_session_picks_total", label_pair("result", r == 0 ? "home" : "moved"), n);
    }
    append_family(out, "ringrelay_upstream_first_byte_timeouts_total", "counter",
                  "Upstream attempts cut by the first-byte timeout (no response head in time), per channel.");
    const std::vector<std::string> labels = channel_labels();
    for (std::size_t i = 0; i < labels.size(); ++i)
        append_sample(out, "ringrelay_upstream_first_byte_timeouts_total", label_pair("channel", labels[i]),
                      first_byte_timeouts(static_cast<ChannelIndex>(i)));
    if (const std::uint64_t other = first_byte_timeouts(kMaxChannels); other != 0)
        append_sample(out, "ringrelay_upstream_first_byte_timeouts_total", label_pair("channel", "other"), other);
    append_single(out, "ringrelay_key_force_releases_total", "counter", "Key slots force-released by the admin API.",
                  force_releases_.load(std::memory_order_relaxed));

    append_family(out, "ringrelay_shard_requests_total", "counter", "Requests answered, per shard.");
    for (const auto& s : shards_) {
        std::string labels = "shard=\"";
        append_uint(labels, s->index());
        labels += '"';
        append_sample(out, "ringrelay_shard_requests_total", labels, s->requests_.value());
    }
}

std::string Metrics::render() const {
    GaugeSource source;
    {
        std::lock_guard lk(mu_);
        source = gauge_source_;
    }
    ScrapeGauges g;
    if (source) source(g);
    std::string out;
    out.reserve(8192);
    append_family(out, "ringrelay_build_info", "gauge", "Always 1; the version is a label.");
    append_gauge_sample(out, "ringrelay_build_info", label_pair("version", version_), 1);
    render_counters(out);
    render_histograms(out);

    append_single(out, "ringrelay_upstream_tokens_in_use", "gauge", "Global upstream tokens held.",
                  g.upstream_tokens_in_use);
    append_single(out, "ringrelay_upstream_queue_depth", "gauge", "Requests waiting for a global upstream token.",
                  g.upstream_queue_depth);
    append_single(out, "ringrelay_upstream_tokens_capacity", "gauge",
                  "Global upstream tokens there are (--upstream-max-concurrent).", g.upstream_tokens_capacity);
    append_single(out, "ringrelay_upstream_queue_capacity", "gauge",
                  "Requests that may wait for a token at once (--upstream-max-queue): alerts compare the depth to it.",
                  g.upstream_queue_capacity);
    append_single(out, "ringrelay_keys_in_flight", "gauge", "Requests holding a key slot.", g.keys_in_flight);
    append_single(out, "ringrelay_access_log_dropped_total", "counter",
                  "Access log records dropped because the writer fell behind or a write failed.",
                  g.access_log_dropped);
    append_family(out, "ringrelay_channel_up", "gauge", "1 when the channel is enabled and usable.");
    for (const ChannelGauge& c : g.channels)
        append_gauge_sample(out, "ringrelay_channel_up", label_pair("channel", c.label), c.up ? 1 : 0);
    append_family(out, "ringrelay_circuit_open", "gauge", "1 when the channel's circuit breaker is open.");
    for (const ChannelGauge& c : g.channels)
        append_gauge_sample(out, "ringrelay_circuit_open", label_pair("channel", c.label), c.circuit_open ? 1 : 0);
    return out;
}

}  // namespace rr::obs

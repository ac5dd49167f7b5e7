// Prometheus metrics (text exposition format 0.0.4) for REFERENCE.md section 5.
//
// Shape. One `Metrics` per server. It owns one `ShardMetrics` block per shard; a block
// is written ONLY by its shard's thread and read by whichever thread scrapes (the admin
// listener). Every value in a block is a std::atomic<uint64_t> that its single writer
// updates with a relaxed load + store (no read-modify-write, no lock prefix on x86, no
// cache line shared with another writer), so recording a request costs a few ns and the
// scraper still reads torn-free values. render() sums the blocks at scrape time.
//
// How a shard uses it:
//
//     obs::ShardMetrics& m = metrics.shard(shard_index);           // once, at shard start
//     m.connection_opened();  ...  m.connection_closed();          // per client connection
//     obs::ChannelIndex ch = m.channel_index(channel_id);          // shard-local cache
//     m.observe_queue_wait(waited_ns);                             // after a token wait
//     m.count_upstream_request(); if (fresh) m.count_upstream_connection();
//     m.observe_upstream(ch, upstream_ns);                         // first byte .. end
//     m.record_request(status, obs::ErrorCode::none, total_ns);    // once per request
//
// Global gauges (token pool, wait queue, keys in flight, channel states) are not kept
// here: the lead registers a GaugeSource that fills a ScrapeGauges at each scrape.
//
// Label spaces are fixed or registered, never free text from a client:
//   code     the X-Ringrelay-Error code when the gateway made the response, else "none"
//            (ErrorCode below; a code the enum lacks maps to "other")
//   status   the numeric status the client got
//   channel  a label registered once per channel (the channel id is the intended value)
//   shard    the shard index
//
// Ownership: the server owns the Metrics (and through it every ShardMetrics block)
// for its whole run; shards and the admin listener borrow them and must be gone
// before it is destroyed. What the GaugeSource captures must outlive the Metrics
// likewise. Errors: none reported; recording never fails and allocates only the first
// time a channel is seen (channel_index, observe_upstream); render() may throw
// std::bad_alloc.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rr::obs {

// The codes of X-Ringrelay-Error (REFERENCE.md section 3, plus the HTTP framing ones the
// relay sends). `none` is a response the upstream made. The order is the label order.
enum class ErrorCode : std::uint8_t {
    none,
    invalid_api_key,
    key_revoked,
    key_expired,
    ip_blocked,
    model_not_allowed,
    key_in_use,
    upstream_queue_full,
    queue_timeout,
    rate_limited,
    quota_exceeded,
    invalid_request,
    model_not_found,
    no_available_channel,
    upstream_error,
    upstream_timeout,
    shutting_down,
    bad_request,
    request_timeout,
    uri_too_long,
    header_too_large,
    body_too_large,
    version_not_supported,
    not_implemented,
    not_found,
    store_unavailable,
    // the admin listener's own
    invalid_admin_token,
    method_not_allowed,
    store_error,
    backup_failed,
    unavailable,
    other,  // a code this enum does not list (error_code_from_name of an unknown name)
};
inline constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::other) + 1;

// The label / header text of a code ("none" for ErrorCode::none).
std::string_view error_code_name(ErrorCode code) noexcept;
// The code named `name`: "" and "none" give ErrorCode::none, an unknown name gives
// ErrorCode::other. A linear scan of ~25 short strings: prefer passing the enum.
ErrorCode error_code_from_name(std::string_view name) noexcept;
// Whether a response with this code counts in ringrelay_rejected_total: the gateway
// answered without any upstream answer (everything but none, upstream_error and
// upstream_timeout).
bool is_rejection(ErrorCode code) noexcept;

// Upper bounds (le) of every duration histogram, in seconds and in nanoseconds.
inline constexpr std::size_t kDurationBucketCount = 15;
inline constexpr std::array<std::uint64_t, kDurationBucketCount> kDurationBucketsNs = {
    1'000'000,      2'500'000,      5'000'000,      10'000'000,     25'000'000,
    50'000'000,     100'000'000,    250'000'000,    500'000'000,    1'000'000'000,
    2'500'000'000,  5'000'000'000,  10'000'000'000, 30'000'000'000, 60'000'000'000};

// A counter or gauge with ONE writing thread and any number of reading threads.
// add()/set() are a relaxed load + store: correct only while one thread writes.
class SingleWriterCounter {
public:
    void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void sub(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
    void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

// Cumulative view of one or more histograms (the scraper's sum over shards).
struct HistogramSnapshot {
    std::array<std::uint64_t, kDurationBucketCount + 1> buckets{};  // per bucket, last = above the top bound
    std::uint64_t sum_ns = 0;
    std::uint64_t count() const noexcept;
};

// A duration histogram with the kDurationBucketsNs bounds and one writing thread.
class DurationHistogram {
public:
    // Index of the bucket a value falls in (le is inclusive); kDurationBucketCount
    // for a value above the top bound. Branch-free: counts the bounds below the value.
    static std::size_t bucket_for(std::uint64_t ns) noexcept;
    void observe(std::uint64_t ns) noexcept;
    // Adds this histogram's current values into `out`.
    void add_to(HistogramSnapshot& out) const noexcept;

private:
    std::array<SingleWriterCounter, kDurationBucketCount + 1> buckets_;
    SingleWriterCounter sum_ns_;
};

// Dense index of a registered channel label (Metrics::register_channel).
using ChannelIndex = std::uint32_t;
// Channel labels beyond this many share one series labelled "other" (index kMaxChannels).
inline constexpr ChannelIndex kMaxChannels = 4096;

class Metrics;

// Why a request went to an upstream a second time (ringrelay_upstream_replays_total).
// The first three are replays the upstream provably never acted on; the next two
// happen only for idempotent methods or with --retry-non-idempotent; the last only
// with --first-byte-timeout (the operator's choice, any method).
enum class ReplayReason : std::uint8_t {
    connect_failed,    // no connection, so no byte of the request was written
    stale_connection,  // a pooled connection was found closed before the request was accepted
    upstream_refused,  // the upstream itself answered 429 or 503
    no_response,       // the request went out and the connection closed without an answer
    upstream_failed,   // any other failure (timeout, 5xx, cut-short answer): the upstream may have run it
    first_byte_timeout,  // no response head (SSE: first event) within the first-byte timeout
    count_
};
inline constexpr std::size_t kReplayReasonCount = static_cast<std::size_t>(ReplayReason::count_);
std::string_view replay_reason_name(ReplayReason r) noexcept;

// Totals of one shard (for /admin/state): read by any thread, summed by none.
struct ShardTotals {
    std::uint64_t requests = 0;
    std::uint64_t connections_active = 0;
    std::uint64_t upstream_connections = 0;
    std::uint64_t upstream_requests = 0;
    std::uint64_t enobufs = 0;
    std::uint64_t cq_overflows = 0;
    std::uint64_t recv_spills = 0;
    std::uint64_t recv_buffers_in_use = 0;
    std::uint64_t usage_unknown = 0;
};

// The counters of one shard. Every non-const member must be called from the shard's
// own thread only (the single writer); the const ones from any thread. Lives as long
// as its Metrics; never moves.
class alignas(64) ShardMetrics {
public:
    ShardMetrics(Metrics& owner, unsigned shard_index);
    ~ShardMetrics();
    ShardMetrics(const ShardMetrics&) = delete;
    ShardMetrics& operator=(const ShardMetrics&) = delete;

    // One finished request: the status the client got, the gateway's code (none when
    // the upstream answered), the whole time from the first header byte to the last
    // response byte. Counts requests_total{code,status}, request_duration_seconds and,
    // for a rejection code, rejected_total{code}. No allocation, no lock.
    void record_request(int status, ErrorCode code, std::uint64_t duration_ns) noexcept;
    // Time a request waited for a global upstream token (0 when granted at once).
    void observe_queue_wait(std::uint64_t waited_ns) noexcept { queue_wait_.observe(waited_ns); }
    // Time of one upstream exchange on a channel. An index from channel_index() or
    // Metrics::register_channel(); an index >= kMaxChannels counts under "other".
    // Allocates (once per 64 channels per shard) the first time a channel is seen.
    void observe_upstream(ChannelIndex channel, std::uint64_t duration_ns);
    // An upstream attempt on a channel cut by the first-byte timeout (same indexes).
    void count_first_byte_timeout(ChannelIndex channel);

    // The index of a channel label, from a shard-local cache; a miss registers the
    // label with Metrics (a mutex, once per label per shard) and allocates.
    ChannelIndex channel_index(std::string_view label);

    void connection_opened() noexcept { connections_active_.add(); }
    void connection_closed() noexcept { connections_active_.sub(); }
    void count_upstream_connection() noexcept { upstream_connections_.add(); }
    void count_upstream_request() noexcept { upstream_requests_.add(); }
    // A channel picked for a request of a session: at its home channel, or moved.
    void count_session_pick(bool home) noexcept { session_picks_[home ? 0 : 1].add(); }
    // A billable answer that carried no usage (access line "usage":"unknown").
    void count_usage_unknown() noexcept { usage_unknown_.add(); }
    void count_upstream_replay(ReplayReason r) noexcept { replays_[static_cast<std::size_t>(r)].add(); }
    // The loop's own running totals (io::LoopStats enobufs / cq_overflows): copied in
    // whenever convenient (e.g. once per loop iteration or per request).
    void set_io_counters(std::uint64_t enobufs, std::uint64_t cq_overflows) noexcept {
        enobufs_.set(enobufs);
        cq_overflows_.set(cq_overflows);
    }
    // The receive ring's state (io::LoopStats recv_spills, BufferRing::in_use): same.
    void set_recv_buffer_counters(std::uint64_t spills, std::uint64_t in_use) noexcept {
        recv_spills_.set(spills);
        recv_buffers_in_use_.set(in_use);
    }

    unsigned index() const noexcept { return index_; }
    ShardTotals totals() const noexcept;

private:
    friend class Metrics;
    static constexpr std::size_t kStatusSlots = 256;
    static constexpr std::size_t kStatusSlotsMaxUsed = kStatusSlots * 3 / 4;
    static constexpr std::size_t kChannelChunk = 64;
    static constexpr std::size_t kChannelChunks = (kMaxChannels + 1 + kChannelChunk - 1) / kChannelChunk;
    // Open-addressing table of (code, status) -> count. The writer publishes a slot's
    // key with a release store; the scraper reads keys with acquire and skips 0.
    struct StatusSlot {
        std::atomic<std::uint32_t> key{0};  // (code + 1) << 16 | status; 0 = empty
        SingleWriterCounter count;
    };
    struct ChannelSeries {
        DurationHistogram upstream;
        SingleWriterCounter first_byte_timeouts;
    };
    using ChannelChunk = std::array<ChannelSeries, kChannelChunk>;
    ChannelSeries& channel_series(ChannelIndex channel);

    void count_status(int status, ErrorCode code) noexcept;
    ChannelChunk* grow_channels(std::size_t chunk);
    struct TransparentHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    Metrics& owner_;
    const unsigned index_;
    std::array<StatusSlot, kStatusSlots> status_slots_;
    std::size_t status_slots_used_ = 0;  // writer-private
    std::array<SingleWriterCounter, kErrorCodeCount> status_overflow_;  // table full: status "other"
    std::array<SingleWriterCounter, kErrorCodeCount> rejected_;
    SingleWriterCounter requests_;
    DurationHistogram request_duration_;
    DurationHistogram queue_wait_;
    std::array<std::atomic<ChannelChunk*>, kChannelChunks> channel_chunks_{};
    SingleWriterCounter connections_active_;
    SingleWriterCounter upstream_connections_;
    SingleWriterCounter upstream_requests_;
    SingleWriterCounter usage_unknown_;
    std::array<SingleWriterCounter, 2> session_picks_;  // home, moved
    SingleWriterCounter enobufs_;
    SingleWriterCounter cq_overflows_;
    SingleWriterCounter recv_spills_;
    SingleWriterCounter recv_buffers_in_use_;
    std::array<SingleWriterCounter, kReplayReasonCount> replays_;
    std::unordered_map<std::string, ChannelIndex, TransparentHash, std::equal_to<>> channel_cache_;  // writer-private
};

// A channel's state at scrape time.
struct ChannelGauge {
    std::string label;  // the same label the shards register (channel id)
    bool up = false;
    bool circuit_open = false;
};

// The values render() does not keep itself, filled by the GaugeSource at each scrape.
struct ScrapeGauges {
    double upstream_tokens_in_use = 0;
    double upstream_queue_depth = 0;
    double upstream_tokens_capacity = 0;  // --upstream-max-concurrent (as set now)
    double upstream_queue_capacity = 0;   // --upstream-max-queue
    double keys_in_flight = 0;
    std::uint64_t access_log_dropped = 0;  // AccessLog::dropped()
    std::vector<ChannelGauge> channels;
};
// Runs on the scraping thread, inside render() (no lock of Metrics held).
using GaugeSource = std::function<void(ScrapeGauges&)>;

class Metrics {
public:
    // `shard_count` blocks are created at once (and never move); `version` labels
    // ringrelay_build_info. Throws std::bad_alloc only.
    Metrics(unsigned shard_count, std::string version);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    unsigned shard_count() const noexcept { return static_cast<unsigned>(shards_.size()); }
    // The block of shard i (i < shard_count()); the reference lives as long as *this.
    ShardMetrics& shard(unsigned i) noexcept { return *shards_[i]; }
    const ShardMetrics& shard(unsigned i) const noexcept { return *shards_[i]; }

    // The index of a channel label, registering it on first use. Any thread; takes a
    // mutex, so shards call it through ShardMetrics::channel_index() (cached). The same
    // label always gets the same index; past kMaxChannels labels, kMaxChannels ("other").
    ChannelIndex register_channel(std::string_view label);

    // Replaces the source of the global gauges. Any thread (a mutex), usually at start.
    void set_gauge_source(GaugeSource source);
    // ringrelay_key_force_releases_total (admin thread): an atomic add, any thread.
    void count_key_force_releases(std::uint64_t n = 1) noexcept { force_releases_.fetch_add(n, std::memory_order_relaxed); }

    // The whole exposition text (Content-Type: text/plain; version=0.0.4). Any thread,
    // concurrently with the shards writing; allocates. Values of one histogram are read
    // without stopping its writer, so _count is computed from the buckets read (always
    // equal to the +Inf bucket) and _sum may lag by the observations in flight.
    std::string render() const;

private:
    friend class ShardMetrics;
    std::vector<std::string> channel_labels() const;
    void render_histograms(std::string& out) const;
    HistogramSnapshot upstream_histogram(ChannelIndex channel) const;
    std::uint64_t first_byte_timeouts(ChannelIndex channel) const;
    void render_counters(std::string& out) const;

    std::vector<std::unique_ptr<ShardMetrics>> shards_;
    std::string version_;
    mutable std::mutex mu_;  // guards the three below
    std::vector<std::string> labels_;
    std::unordered_map<std::string, ChannelIndex> label_index_;
    GaugeSource gauge_source_;
    std::atomic<std::uint64_t> force_releases_{0};
};

// The Content-Type of render()'s text.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Appends s as a label value: backslash, double quote and line feed escaped (0.0.4).
void append_label_value(std::string& out, std::string_view s);

}  // namespace rr::obs

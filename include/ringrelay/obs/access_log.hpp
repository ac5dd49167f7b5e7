// The access log (REFERENCE.md section 5): one JSON object per line per request, plus the
// debug events `key acquired`, `key released` and `upstream queue`, written off the
// shards by one writer thread.
//
// Shape. Each shard owns an AccessLogProducer: a lock-free single-producer /
// single-consumer ring of bytes. The shard fills an AccessRecord on its stack (strings
// are copied into bounded arrays and truncated, so nothing allocates) and push()es it:
// push() formats the JSON line right there, where the record is hot in cache, and
// copies the line into the ring. The writer thread is only an I/O pump: every few
// milliseconds it hands what each ring holds to one writev(2), straight from the ring
// memory. (A first version queued 700-byte records for the writer to format; moving
// them between cores cost more than formatting them.) A full ring drops the line and
// counts it: a shard never waits for log I/O. Under load a push makes no syscall: a
// producer rings the writer's eventfd only for the first line after a quiet spell or
// when its ring passes half full (access_log.cpp, WriterState).
//
// How the lead wires it:
//
//     obs::AccessLog log(shard_count, {.path = st.log_file, .level = level});
//     if (!log.start(error)) ...                      // opens the file, starts the writer
//     // on shard i, per request:
//     obs::AccessLogProducer& out = log.producer(i);
//     obs::AccessRecord r;
//     r.method.assign(head.method);
//     r.set_path(head.target);                        // the query string is cut off
//     r.status = 200; r.latency_ns = ...; ...
//     out.push(r);                                    // false: dropped (counted)
//     // debug events, only when someone will read them:
//     if (out.enabled(obs::Level::debug)) out.push(obs::AccessRecord::event(obs::EventKind::key_acquired) ...);
//     // SIGUSR1: log.reopen(error);   drain: log.stop() (writes everything queued)
//
// Secrets. AccessRecord has no field that can hold a header, a body or a credential:
// only the names listed in REFERENCE.md. `path` is the request target without its query
// string (which may carry `?key=` style secrets) unless the caller passes keep_query.
//
// Ownership and threads. The server owns the AccessLog; it owns the producers, the
// rings, the file and the writer thread, and outlives every shard. A producer is
// pushed to by its one shard (see AccessLogProducer); start(), reopen() and stop() are
// the control path's. A record is copied into the ring by push(): nothing it was
// filled from is kept. Errors: start() and reopen() answer false with the reason in
// error; push() answers false when the line was dropped (ring full); lines that a
// failed write loses are counted in dropped() too. Nothing throws past start-up.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringrelay/obs/log.hpp"
#include "ringrelay/obs/metrics.hpp"

namespace rr::obs {

// A string of at most N bytes stored in place. assign() truncates longer text at a
// UTF-8 character boundary; copying copies only the bytes in use.
template <std::size_t N>
class BoundedText {
    static_assert(N > 0 && N <= 0xffff);

public:
    BoundedText() noexcept = default;
    BoundedText(const BoundedText& o) noexcept { copy_from(o); }
    BoundedText& operator=(const BoundedText& o) noexcept {
        copy_from(o);
        return *this;
    }
    // Copies s (truncated to N bytes, never splitting a UTF-8 sequence); returns
    // whether all of it fit.
    bool assign(std::string_view s) noexcept {
        std::size_t n = s.size();
        if (n > N) {
            n = N;
            // s[n] is the first byte left out: if it continues a sequence, cut before its lead.
            for (int back = 0; back < 3 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80; ++back) --n;
        }
        if (n != 0) std::memcpy(data_, s.data(), n);  // an empty view may carry a null pointer
        len_ = static_cast<std::uint16_t>(n);
        return n == s.size();
    }
    std::string_view view() const noexcept { return {data_, len_}; }
    bool empty() const noexcept { return len_ == 0; }
    static constexpr std::size_t capacity() noexcept { return N; }

private:
    void copy_from(const BoundedText& o) noexcept {
        std::memcpy(data_, o.data_, o.len_);
        len_ = o.len_;
    }
    std::uint16_t len_ = 0;
    char data_[N];  // only the first len_ bytes are ever read
};

enum class EventKind : std::uint8_t {
    request,         // the access log line of a finished request ("msg":"request")
    key_acquired,    // debug: a key slot was taken (count = the key's in-flight after)
    key_released,    // debug: a key slot was given back (count = the key's in-flight after)
    upstream_queue,  // debug: the request waits for a global token (count = queue depth)
};

// What a request's access line says of its token usage (OPERATIONS.md, "Usage
// accounting"). A billable answer is a successful (2xx) upstream answer to a gateway
// POST that names a model, count_tokens excepted.
enum class UsageReport : std::uint8_t {
    none,      // not billable (relay mode, an error, a rejection, count_tokens): "usage":null
    reported,  // the upstream's own figures were read and counted
    unknown,   // billable, but the answer carried no usage: nothing was counted
};

// What the gateway learnt of one request, for its access line and metrics: the
// caller's key, the channel that served it, the model, how long it queued, what it
// used. Filled stage by stage as the gateway handles the request; empty in relay
// mode. Plain values: it lives in the request's context, on the shard's thread.
struct RequestAttribution {
    std::string api_key_id;
    std::string channel_id;  // the last channel tried
    std::string model;
    bool stream = false;          // the client asked for a stream
    std::uint64_t queue_ms = 0;   // waiting for the key slot and the global token
    UsageReport usage = UsageReport::none;  // set by the gateway's usage count
    std::uint64_t prompt_tokens = 0;        // usage == reported
    std::uint64_t completion_tokens = 0;
};

// One log line's data. Fixed size (about 700 bytes), no pointers: a copy is the whole
// record. Durations in nanoseconds (written as milliseconds with 3 decimals).
struct AccessRecord {
    static constexpr std::size_t kPathMax = 256;

    // A debug event of the given kind (level debug).
    static AccessRecord event(EventKind kind) noexcept {
        AccessRecord r;
        r.kind = kind;
        r.level = Level::debug;
        return r;
    }

    // The request target without its query string (cut at the first '?') unless
    // keep_query; truncated to kPathMax bytes.
    void set_path(std::string_view target, bool keep_query = false) noexcept {
        if (!keep_query) target = target.substr(0, target.find('?'));
        path_.assign(target);
    }
    std::string_view path() const noexcept { return path_.view(); }

    EventKind kind = EventKind::request;
    Level level = Level::info;
    std::uint16_t shard = 0;        // push() writes the producer's index instead
    std::int64_t ts_unix_ns = 0;    // wall clock; push() stamps it when 0 (coarse: 1-4 ms steps)
    std::uint16_t status = 0;       // what the client got
    std::uint16_t upstream_status = 0;  // 0: no upstream answer (written as null)
    bool stream = false;
    ErrorCode error_code = ErrorCode::none;  // none is written as null
    std::uint64_t latency_ns = 0;   // first request byte .. last response byte
    std::uint64_t queue_ns = 0;     // waited for key slot + global token
    std::uint64_t upstream_ns = 0;  // upstream exchange
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint32_t count = 0;        // debug events only, see EventKind
    UsageReport usage = UsageReport::none;
    std::uint64_t prompt_tokens = 0;      // usage == reported only
    std::uint64_t completion_tokens = 0;  // usage == reported only
    BoundedText<16> method;
    BoundedText<128> trace_id;      // X-Request-Id
    BoundedText<32> api_key_id;     // the key's id (k_...), never its secret; empty: null
    BoundedText<32> channel_id;     // empty: null
    BoundedText<128> model;         // empty: null

private:
    BoundedText<kPathMax> path_;
};

struct AccessLogOptions {
    std::string path;                   // "" = stderr (fd 2, never closed)
    Level level = Level::info;          // records below this level are not pushed
    // Bytes per producer's ring (rounded up to a power of two, at least two of the
    // longest lines). 1 MiB holds ~2400 request lines, ~30 ms of a busy shard, six of
    // the writer's periods; touched at start so the shard takes no page faults.
    std::size_t ring_bytes = std::size_t{1} << 20;
    // How often the writer drains while records flow: a line reaches the file at most
    // this late (plus the write). Longer periods cost less; a ring past half full
    // wakes the writer early, so the period does not decide what is dropped.
    int flush_interval_ms = 5;
};

struct WriterState;  // the writer's side, shared with the producers (access_log.cpp)

// The queue of one shard. push() and enabled() from ONE thread (the shard's); the
// other members from any thread. Lives as long as its AccessLog; never moves.
class alignas(64) AccessLogProducer {
public:
    AccessLogProducer(WriterState& writer, unsigned index, std::size_t ring_bytes, Level level);
    AccessLogProducer(const AccessLogProducer&) = delete;
    AccessLogProducer& operator=(const AccessLogProducer&) = delete;

    bool enabled(Level level) const noexcept { return level >= min_level_; }
    // Formats r's line into the ring (with this producer's index as shard, and now as ts
    // when r's is 0). Returns false when the record is below the log level (not
    // counted) or the ring has no room for the line (counted in dropped()). Never
    // blocks, never allocates; may make one eventfd write when the writer is asleep or
    // the ring is past half full.
    bool push(const AccessRecord& r) noexcept;
    std::uint64_t dropped() const noexcept { return dropped_.value(); }
    unsigned index() const noexcept { return index_; }

private:
    friend class AccessLog;
    friend struct WriterState;
    void urge_if_half_full(std::uint64_t tail) noexcept;

    WriterState& writer_;
    const unsigned index_;
    const Level min_level_;
    const std::uint64_t mask_;        // ring size - 1
    const std::uint64_t check_mask_;  // push() checks the fill each time tail crosses a multiple of this + 1
    std::unique_ptr<char[]> bytes_;
    // Producer's cache line: its tail and its last view of the writer's head.
    alignas(64) std::atomic<std::uint64_t> tail_{0};  // bytes pushed, ever
    std::uint64_t head_cache_ = 0;
    SingleWriterCounter dropped_;
    // Writer's cache line.
    alignas(64) std::atomic<std::uint64_t> head_{0};     // bytes the writer is done with
    std::atomic<std::uint64_t> written_{0};              // head_ as of the last finished write
};

class AccessLog {
public:
    // `producers` queues (one per shard; add one for any other thread that logs).
    // Opens nothing yet. Throws std::bad_alloc only.
    AccessLog(unsigned producers, AccessLogOptions options);
    // Stops the writer (flushing) if it runs.
    ~AccessLog();
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    unsigned producer_count() const noexcept { return static_cast<unsigned>(producers_.size()); }
    AccessLogProducer& producer(unsigned i) noexcept { return *producers_[i]; }

    // Opens the file (O_WRONLY|O_APPEND|O_CREAT, mode 0640) and starts the writer
    // thread. False with `error` set when the file cannot be opened or the thread or
    // eventfd cannot be made. Call once.
    bool start(std::string& error);
    // Writes every record pushed before the call, then joins the writer and closes the
    // file. Records pushed after stop() began may be lost. Idempotent.
    void stop();
    // Opens the file path anew (after logrotate renamed it). Any thread (SIGUSR1
    // handler thread). The writer switches before its next write: every record pushed
    // after reopen() returns goes to the new file. False with `error` when the open
    // fails; the old file then stays in use. A no-op returning true for stderr.
    bool reopen(std::string& error);
    // Waits until every record pushed before the call has been written (or dropped by a
    // failed write). Returns at once when the writer is not running.
    void flush();

    // Records lost: rings full (all producers) plus lines a failed write could not put out.
    std::uint64_t dropped() const noexcept;
    // Lines written so far.
    std::uint64_t written() const noexcept;
    // Times the writer's eventfd was rung (first record after a quiet spell, a ring past
    // half full, flush / reopen / stop): under steady load it stays far below written().
    std::uint64_t wakeups() const noexcept;

private:
    std::unique_ptr<WriterState> state_;
    std::vector<std::unique_ptr<AccessLogProducer>> producers_;
};

// The longest line a record can make: every text field escaped at worst, plus keys,
// punctuation and the widest numbers (about 450 bytes, 512 kept).
inline constexpr std::size_t kMaxAccessLineBytes =
    512 + kJsonEscapedMaxGrowth * (decltype(AccessRecord::method)::capacity() + AccessRecord::kPathMax +
                                   decltype(AccessRecord::trace_id)::capacity() +
                                   decltype(AccessRecord::api_key_id)::capacity() +
                                   decltype(AccessRecord::channel_id)::capacity() +
                                   decltype(AccessRecord::model)::capacity());

// Writes the JSON line (with its '\n') of one record, stamped with `shard` and
// `ts_unix_ns` instead of the record's own, into out (room for kMaxAccessLineBytes);
// returns its length. The formatter push() runs.
std::size_t write_access_line(char* out, const AccessRecord& r, unsigned shard, std::int64_t ts_unix_ns) noexcept;

// Appends the JSON line of one record as it is (its shard and ts): for tests and for
// anyone who needs a line synchronously.
void append_access_line(std::string& out, const AccessRecord& r);

}  // namespace rr::obs

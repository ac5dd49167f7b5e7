// The access log's line format: one JSON object per record, written with plain
// stores into a stack buffer sized for the largest record (no allocation per line).
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "ringrelay/obs/access_log.hpp"

namespace rr::obs {
namespace {

// Writes one line into a buffer of kMaxAccessLineBytes with plain stores: the formatter
// runs for every request, so it avoids std::string's per-append capacity checks.
class LineBuilder {
public:
    explicit LineBuilder(char* buf) noexcept : p_(buf) {}
    char* end() const noexcept { return p_; }

    template <std::size_t N>
    void literal(const char (&s)[N]) noexcept {
        std::memcpy(p_, s, N - 1);
        p_ += N - 1;
    }
    void uint(std::uint64_t v) noexcept { p_ = std::to_chars(p_, p_ + 20, v).ptr; }
    // Nanoseconds as milliseconds with three decimals ("12.345"), without floating point.
    void millis(std::uint64_t ns) noexcept {
        const std::uint64_t us = ns / 1000;
        uint(us / 1000);
        const auto frac = static_cast<unsigned>(us % 1000);
        p_[0] = '.';
        p_[1] = static_cast<char>('0' + frac / 100);
        p_[2] = static_cast<char>('0' + frac / 10 % 10);
        p_[3] = static_cast<char>('0' + frac % 10);
        p_ += 4;
    }
    // Text known to need no escaping (the formatter's own words).
    void plain_text(std::string_view s) noexcept {
        *p_++ = '"';
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
        *p_++ = '"';
    }
    void text(std::string_view s) noexcept {
        *p_++ = '"';
        p_ = write_json_escaped(p_, s);
        *p_++ = '"';
    }
    // Absent (empty) text is written as null, so "no key" never looks like a key id "".
    void text_or_null(std::string_view s) noexcept {
        if (s.empty()) literal("null");
        else text(s);
    }
    void boolean(bool b) noexcept {
        if (b) literal("true");
        else literal("false");
    }
    // RFC 3339 UTC with milliseconds. gmtime_r is the costly part, so the seconds text
    // is kept per thread and redone only when the second changes.
    void timestamp(std::int64_t unix_ns) noexcept {
        thread_local std::int64_t cached_sec = -1;
        thread_local char cached[24];
        unix_ns = std::max<std::int64_t>(unix_ns, 0);
        const std::int64_t sec = unix_ns / 1'000'000'000;
        if (sec != cached_sec) {
            const time_t t = static_cast<time_t>(sec);
            tm parts{};
            gmtime_r(&t, &parts);
            strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &parts);
            cached_sec = sec;
        }
        const auto ms = static_cast<unsigned>((unix_ns / 1'000'000) % 1000);
        *p_++ = '"';
        const std::size_t n = std::strlen(cached);
        std::memcpy(p_, cached, n);
        p_ += n;
        p_[0] = '.';
        p_[1] = static_cast<char>('0' + ms / 100);
        p_[2] = static_cast<char>('0' + ms / 10 % 10);
        p_[3] = static_cast<char>('0' + ms % 10);
        p_[4] = 'Z';
        p_[5] = '"';
        p_ += 6;
    }

private:
    char* p_;
};

std::string_view event_message(EventKind k) noexcept {
    switch (k) {
    case EventKind::request: return "request";
    case EventKind::key_acquired: return "key acquired";
    case EventKind::key_released: return "key released";
    case EventKind::upstream_queue: return "upstream queue";
    }
    return "request";
}

// "usage":"reported","prompt_tokens":N,"completion_tokens":M, or "usage":"unknown"
// or null with both token fields null: a line never shows a count nobody reported.
void write_usage_fields(LineBuilder& b, const AccessRecord& r) noexcept {
    b.literal(",\"usage\":");
    switch (r.usage) {
    case UsageReport::none: b.literal("null"); break;
    case UsageReport::reported: b.literal("\"reported\""); break;
    case UsageReport::unknown: b.literal("\"unknown\""); break;
    }
    const bool reported = r.usage == UsageReport::reported;
    b.literal(",\"prompt_tokens\":");
    if (reported) b.uint(r.prompt_tokens);
    else b.literal("null");
    b.literal(",\"completion_tokens\":");
    if (reported) b.uint(r.completion_tokens);
    else b.literal("null");
}

void write_request_fields(LineBuilder& b, const AccessRecord& r) noexcept {
    b.literal(",\"method\":");
    b.text(r.method.view());
    b.literal(",\"path\":");
    b.text(r.path());
    b.literal(",\"status\":");
    b.uint(r.status);
    b.literal(",\"latency_ms\":");
    b.millis(r.latency_ns);
    b.literal(",\"queue_ms\":");
    b.millis(r.queue_ns);
    b.literal(",\"upstream_ms\":");
    b.millis(r.upstream_ns);
    b.literal(",\"upstream_status\":");
    if (r.upstream_status == 0) b.literal("null");
    else b.uint(r.upstream_status);
    b.literal(",\"api_key_id\":");
    b.text_or_null(r.api_key_id.view());
    b.literal(",\"channel_id\":");
    b.text_or_null(r.channel_id.view());
    b.literal(",\"model\":");
    b.text_or_null(r.model.view());
    b.literal(",\"stream\":");
    b.boolean(r.stream);
    b.literal(",\"bytes_in\":");
    b.uint(r.bytes_in);
    b.literal(",\"bytes_out\":");
    b.uint(r.bytes_out);
    b.literal(",\"error_code\":");
    b.text_or_null(r.error_code == ErrorCode::none ? std::string_view{} : error_code_name(r.error_code));
    write_usage_fields(b, r);
}

void write_event_fields(LineBuilder& b, const AccessRecord& r) noexcept {
    b.literal(",\"api_key_id\":");
    b.text_or_null(r.api_key_id.view());
    switch (r.kind) {
    case EventKind::key_acquired:
        b.literal(",\"in_flight\":");
        b.uint(r.count);
        b.literal(",\"queue_ms\":");
        b.millis(r.queue_ns);
        break;
    case EventKind::key_released:
        b.literal(",\"in_flight\":");
        b.uint(r.count);
        break;
    case EventKind::upstream_queue:
        b.literal(",\"model\":");
        b.text_or_null(r.model.view());
        b.literal(",\"queue_depth\":");
        b.uint(r.count);
        b.literal(",\"queue_ms\":");
        b.millis(r.queue_ns);
        break;
    case EventKind::request: break;
    }
}

}  // namespace

std::size_t write_access_line(char* out, const AccessRecord& r, unsigned shard, std::int64_t ts_unix_ns) noexcept {
    LineBuilder b(out);
    b.literal("{\"ts\":");
    b.timestamp(ts_unix_ns);
    b.literal(",\"level\":");
    b.plain_text(level_name(r.level));
    b.literal(",\"msg\":");
    b.plain_text(event_message(r.kind));
    b.literal(",\"trace_id\":");
    b.text(r.trace_id.view());
    b.literal(",\"shard\":");
    b.uint(shard);
    if (r.kind == EventKind::request) write_request_fields(b, r);
    else write_event_fields(b, r);
    b.literal("}\n");
    return static_cast<std::size_t>(b.end() - out);
}

void append_access_line(std::string& out, const AccessRecord& r) {
    char buf[kMaxAccessLineBytes];
    out.append(buf, write_access_line(buf, r, r.shard, r.ts_unix_ns));
}

}  // namespace rr::obs

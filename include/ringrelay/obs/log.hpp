// Structured log lines: one JSON object per line, written with a single write(2)
// so lines from several threads never interleave. This is the start-up / control
// path logger; the per-request access log goes through the shard queues (issue 6).
//
// Any thread may call log(): the level and fd are process-wide, set once at start-up
// by configure_log() before other threads log. A Field borrows its key and text for
// the call only. Errors: none reported; a failed or short write(2) loses the line
// (a logger has nowhere to report its own failure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace rr::obs {

enum class Level : std::uint8_t { debug, info, warn, error };

// The level as log lines and access log lines spell it ("debug", "info", "warn",
// "error"; parse_level reads each back). Inline: the access log writes it on every line.
constexpr std::string_view level_name(Level level) noexcept {
    switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    }
    return "info";
}

struct Field {
    Field(std::string_view k, std::string_view v) noexcept : key(k), text(v), is_number(false) {}
    Field(std::string_view k, const char* v) noexcept : key(k), text(v), is_number(false) {}
    Field(std::string_view k, const std::string& v) noexcept : key(k), text(v), is_number(false) {}
    template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
    Field(std::string_view k, N n) noexcept : key(k), number(static_cast<double>(n)), is_number(true) {}
    std::string_view key;
    std::string_view text;
    double number = 0;
    bool is_number;
};

// Sets the minimum level and the file descriptor lines go to (default: stderr, info).
void configure_log(Level min_level, int fd = 2) noexcept;
bool parse_level(std::string_view text, Level& out) noexcept;
bool log_enabled(Level level) noexcept;

void log(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

// Appends s to out as the inside of a JSON string (quotes not included). Bytes that
// are not valid UTF-8 become \ufffd, so the result is always valid JSON.
void append_json_escaped(std::string& out, std::string_view s);
// The same into a raw buffer with room for kJsonEscapedMaxGrowth * s.size() bytes;
// returns the end of what it wrote. No allocation.
inline constexpr std::size_t kJsonEscapedMaxGrowth = 6;  // a control byte becomes \u00XX
char* write_json_escaped(char* out, std::string_view s) noexcept;
// Current UTC time as RFC 3339 with milliseconds ("2026-11-23T15:20:17.123Z").
std::string utc_timestamp();

}  // namespace rr::obs

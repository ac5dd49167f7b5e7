#include "ringrelay/obs/log.hpp"

#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace rr::obs {
namespace {
std::atomic<int> g_min_level{static_cast<int>(Level::info)};
std::atomic<int> g_fd{2};
}  // namespace

void configure_log(Level min_level, int fd) noexcept {
    g_min_level.store(static_cast<int>(min_level));
    g_fd.store(fd);
}

bool parse_level(std::string_view text, Level& out) noexcept {
    if (text == "debug") out = Level::debug;
    else if (text == "info") out = Level::info;
    else if (text == "warn" || text == "warning") out = Level::warn;
    else if (text == "error") out = Level::error;
    else return false;
    return true;
}

bool log_enabled(Level level) noexcept { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

namespace {
// Length of the valid UTF-8 sequence starting at p (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_sequence_length(const unsigned char* p, std::size_t left) noexcept {
    const unsigned char c = p[0];
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}
}  // namespace

namespace {
// 1 for a byte that goes out as itself: printable ASCII other than '"' and '\\'.
constexpr std::array<bool, 256> kPlainJsonByte = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    return t;
}();

// Whether any of the 8 bytes in x needs more than a copy: a control byte (< 0x20), '"',
// '\\' or a byte >= 0x80 (checked as UTF-8). Bit tricks from "Bit Twiddling Hacks"
// (haszero / hasless): the access log escapes ~100 bytes of text per request, and
// testing 8 at a time costs a third of testing them one by one.
constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;
inline bool any_special_byte(std::uint64_t x) noexcept {
    const auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHighs; };
    const std::uint64_t below_space = (x - kOnes * 0x20) & ~x & kHighs;
    return ((x & kHighs) | below_space | has_zero(x ^ (kOnes * '"')) | has_zero(x ^ (kOnes * '\\'))) != 0;
}
}  // namespace

// Text from clients (paths, models, request ids) may hold any bytes; JSON must be
// valid UTF-8, so an invalid byte becomes U+FFFD rather than breaking the line.
char* write_json_escaped(char* out, std::string_view s) noexcept {
    static const char* hex = "0123456789abcdef";
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t size = s.size();
    std::size_t i = 0;
    while (i < size) {
        for (std::uint64_t word; i + 8 <= size; i += 8) {
            std::memcpy(&word, p + i, 8);
            if (any_special_byte(word)) break;
            std::memcpy(out, &word, 8);
            out += 8;
        }
        while (i < size && kPlainJsonByte[p[i]]) *out++ = static_cast<char>(p[i++]);
        if (i == size) break;
        const unsigned char c = p[i];
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(p + i, size - i);
            if (n == 0) {
                std::memcpy(out, "\\ufffd", 6);
                out += 6;
                ++i;
            } else {
                std::memcpy(out, p + i, n);
                out += n;
                i += n;
            }
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
        ++i;
    }
    return out;
}

void append_json_escaped(std::string& out, std::string_view s) {
    const std::size_t old = out.size();
    out.resize(old + kJsonEscapedMaxGrowth * s.size());
    char* end = write_json_escaped(out.data() + old, s);
    out.resize(static_cast<std::size_t>(end - out.data()));
}

std::string utc_timestamp() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char buf[96];  // room for any int the compiler cannot rule out (-Wformat-truncation)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1,
                  t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
    return buf;
}

void log(Level level, std::string_view msg, std::initializer_list<Field> fields) {
    if (!log_enabled(level)) return;
    std::string line = "{\"ts\":\"" + utc_timestamp() + "\",\"level\":\"";
    line += level_name(level);
    line += "\",\"msg\":\"";
    append_json_escaped(line, msg);
    line += '"';
    for (const Field& f : fields) {
        line += ",\"";
        append_json_escaped(line, f.key);
        line += "\":";
        if (f.is_number) {
            char num[32];
            if (std::floor(f.number) == f.number && std::fabs(f.number) < 1e15)
                std::snprintf(num, sizeof num, "%lld", static_cast<long long>(f.number));
            else
                std::snprintf(num, sizeof num, "%.3f", f.number);
            line += num;
        } else {
            line += '"';
            append_json_escaped(line, f.text);
            line += '"';
        }
    }
    line += "}\n";
    [[maybe_unused]] auto n = ::write(g_fd.load(), line.data(), line.size());
}

}  // namespace rr::obs

// RFC 3339 timestamps and the wall clock. Calendar arithmetic after Howard Hinnant's
// days_from_civil / civil_from_days (proleptic Gregorian, no tables, no time zone files).
#include "ringrelay/common.hpp"

#include <cstdio>

namespace rr {
namespace {

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
    std::int64_t year;
    unsigned month;
    unsigned day;
};

Civil civil_from_days(std::int64_t z) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

bool is_leap(std::int64_t y) noexcept {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
    static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

// Reads exactly `width` digits at text[pos..]; advances pos.
std::optional<unsigned> fixed_digits(std::string_view text, std::size_t& pos, std::size_t width) noexcept {
    if (pos + width > text.size()) return std::nullopt;
    unsigned value = 0;
    for (std::size_t i = 0; i < width; ++i) {
        char c = text[pos + i];
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    pos += width;
    return value;
}

bool expect(std::string_view text, std::size_t& pos, char c) noexcept {
    if (pos >= text.size() || text[pos] != c) return false;
    ++pos;
    return true;
}

// ".250" -> 250 ms; digits beyond the third are read and dropped.
std::optional<unsigned> fraction_ms(std::string_view text, std::size_t& pos) noexcept {
    if (pos >= text.size() || text[pos] != '.') return 0u;
    ++pos;
    unsigned ms = 0;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (digits < 3) ms = ms * 10 + static_cast<unsigned>(text[pos] - '0');
        ++digits;
        ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) ms *= 10;
    return ms;
}

// "Z" -> 0; "+02:00" -> +7200 s. The offset is what local time is ahead of UTC.
std::optional<std::int64_t> offset_seconds(std::string_view text, std::size_t& pos) noexcept {
    if (pos >= text.size()) return std::nullopt;
    char c = text[pos];
    if (c == 'Z' || c == 'z') {
        ++pos;
        return 0;
    }
    if (c != '+' && c != '-') return std::nullopt;
    ++pos;
    auto hh = fixed_digits(text, pos, 2);
    if (!hh || !expect(text, pos, ':')) return std::nullopt;
    auto mm = fixed_digits(text, pos, 2);
    if (!mm || *hh > 23 || *mm > 59) return std::nullopt;
    std::int64_t seconds = *hh * 3600 + *mm * 60;
    return c == '-' ? -seconds : seconds;
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339(std::string_view text) noexcept {
    std::size_t pos = 0;
    auto year = fixed_digits(text, pos, 4);
    if (!year || !expect(text, pos, '-')) return std::nullopt;
    auto month = fixed_digits(text, pos, 2);
    if (!month || !expect(text, pos, '-')) return std::nullopt;
    auto day = fixed_digits(text, pos, 2);
    if (!day || pos >= text.size() || (text[pos] != 'T' && text[pos] != 't')) return std::nullopt;
    ++pos;
    auto hour = fixed_digits(text, pos, 2);
    if (!hour || !expect(text, pos, ':')) return std::nullopt;
    auto minute = fixed_digits(text, pos, 2);
    if (!minute || !expect(text, pos, ':')) return std::nullopt;
    auto second = fixed_digits(text, pos, 2);
    if (!second) return std::nullopt;
    auto ms = fraction_ms(text, pos);
    auto offset = ms ? offset_seconds(text, pos) : std::nullopt;
    if (!offset || pos != text.size()) return std::nullopt;
    if (*month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month)) return std::nullopt;
    // Second 60 is RFC 3339's leap second; it lands on the next minute's first second.
    if (*hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
    std::int64_t seconds = days_from_civil(*year, *month, *day) * 86400 + std::int64_t{*hour} * 3600 +
                           std::int64_t{*minute} * 60 + std::int64_t{*second} - *offset;
    if (seconds < 0) return std::nullopt;
    return seconds * 1000 + *ms;
}

std::string format_rfc3339(std::int64_t unix_ms) {
    std::int64_t seconds = unix_ms / 1000;
    std::int64_t ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        seconds -= 1;
    }
    std::int64_t days = seconds / 86400;
    std::int64_t rest = seconds % 86400;
    if (rest < 0) {
        rest += 86400;
        days -= 1;
    }
    Civil c = civil_from_days(days);
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", static_cast<long long>(c.year),
                          c.month, c.day, static_cast<long long>(rest / 3600), static_cast<long long>(rest / 60 % 60),
                          static_cast<long long>(rest % 60));
    std::string out(buf, static_cast<std::size_t>(n));
    if (ms != 0) {
        std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(ms));
        out += buf;
    }
    out += 'Z';
    return out;
}

std::int64_t now_unix_ms() noexcept {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace rr

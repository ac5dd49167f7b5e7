// Numbers, durations and sizes: the value syntax of every flag and setting.
#include "ringrelay/common.hpp"

#include <limits>

namespace rr {
namespace {

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Splits "123abc" into the leading digits and the rest.
std::pair<std::string_view, std::string_view> split_number(std::string_view text) noexcept {
    std::size_t n = 0;
    while (n < text.size() && is_digit(text[n])) ++n;
    return {text.substr(0, n), text.substr(n)};
}

bool unit_equals(std::string_view unit, std::string_view expected) noexcept {
    if (unit.size() != expected.size()) return false;
    for (std::size_t i = 0; i < unit.size(); ++i) {
        if (lower(unit[i]) != expected[i]) return false;
    }
    return true;
}

std::optional<std::uint64_t> checked_multiply(std::uint64_t a, std::uint64_t b, std::uint64_t max) noexcept {
    if (b != 0 && a > max / b) return std::nullopt;
    return a * b;
}

}  // namespace

std::optional<std::uint64_t> parse_u64(std::string_view text) noexcept {
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (!is_digit(c)) return std::nullopt;
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

std::optional<std::int64_t> parse_i64(std::string_view text) noexcept {
    bool negative = !text.empty() && text.front() == '-';
    if (negative) text.remove_prefix(1);
    auto magnitude = parse_u64(text);
    if (!magnitude) return std::nullopt;
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!negative) {
        if (*magnitude > max) return std::nullopt;
        return static_cast<std::int64_t>(*magnitude);
    }
    if (*magnitude > max + 1) return std::nullopt;
    if (*magnitude == max + 1) return std::numeric_limits<std::int64_t>::min();
    return -static_cast<std::int64_t>(*magnitude);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
    auto [digits, unit] = split_number(text);
    auto value = parse_u64(digits);
    if (!value) return std::nullopt;
    std::uint64_t scale = 0;
    if (unit.empty() || unit == "s")
        scale = 1000;
    else if (unit == "ms")
        scale = 1;
    else if (unit == "m")
        scale = 60'000;
    else if (unit == "h")
        scale = 3'600'000;
    else if (unit == "d")
        scale = 86'400'000;
    else
        return std::nullopt;
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
    auto ms = checked_multiply(*value, scale, max);
    if (!ms) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*ms));
}

std::string format_duration(std::chrono::milliseconds d) {
    struct Unit {
        std::int64_t ms;
        const char* suffix;
    };
    static constexpr Unit units[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
    std::int64_t ms = d.count();
    if (ms == 0) return "0s";
    std::string sign = ms < 0 ? "-" : "";
    // |INT64_MIN| does not fit; it is not a whole number of any unit above ms anyway.
    std::uint64_t magnitude = ms < 0 ? 0 - static_cast<std::uint64_t>(ms) : static_cast<std::uint64_t>(ms);
    for (const Unit& u : units) {
        auto unit = static_cast<std::uint64_t>(u.ms);
        if (magnitude % unit == 0) return sign + std::to_string(magnitude / unit) + u.suffix;
    }
    return sign + std::to_string(magnitude) + "ms";
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
    auto [digits, unit] = split_number(text);
    auto value = parse_u64(digits);
    if (!value) return std::nullopt;
    struct Unit {
        std::string_view name;
        std::uint64_t scale;
    };
    static constexpr std::uint64_t kib = 1024;
    static constexpr Unit units[] = {
        {"", 1},
        {"b", 1},
        {"k", kib},
        {"kib", kib},
        {"kb", 1000},
        {"m", kib * kib},
        {"mib", kib * kib},
        {"mb", 1000ull * 1000},
        {"g", kib * kib * kib},
        {"gib", kib * kib * kib},
        {"gb", 1000ull * 1000 * 1000},
        {"t", kib * kib * kib * kib},
        {"tib", kib * kib * kib * kib},
        {"tb", 1000ull * 1000 * 1000 * 1000},
    };
    for (const Unit& u : units) {
        if (unit_equals(unit, u.name)) {
            return checked_multiply(*value, u.scale, std::numeric_limits<std::uint64_t>::max());
        }
    }
    return std::nullopt;
}

std::vector<std::string_view> split_list(std::string_view text, char sep) {
    std::vector<std::string_view> out;
    if (text.empty()) return out;
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    };
    for (;;) {
        std::size_t end = text.find(sep);
        out.push_back(trim(text.substr(0, end)));
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + 1);
    }
    return out;
}

}  // namespace rr

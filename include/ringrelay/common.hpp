// Small value parsers and helpers shared by the CLI, the server settings and the
// store. No I/O, no allocation beyond the returned strings and vectors.
//
// Every parser is strict and total: it either accepts the whole text or answers
// nullopt, never a prefix, never an exception.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rr {

// "500ms", "30s", "5m", "24h", "30d" (a bare integer means seconds). nullopt on
// anything else: empty, negative, unknown unit, overflow.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;

// "8MiB", "512KiB", "1GiB", "8MB", "1000", "64k". nullopt on anything else.
// Binary units: KiB/MiB/GiB/TiB and the single letters k/m/g/t (as nginx reads them);
// decimal units: KB/MB/GB/TB. A trailing "B" alone means bytes. Unit letters are
// case-insensitive.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

// The inverse of parse_duration for display: the largest exact unit ("90s" -> "90s",
// "86400000ms" -> "1d", 0 -> "0s"). Negative durations get a leading '-'.
std::string format_duration(std::chrono::milliseconds d);

// Unsigned decimal, no sign, no spaces, no overflow. nullopt otherwise.
std::optional<std::uint64_t> parse_u64(std::string_view text) noexcept;

// Signed decimal with an optional leading '-', within int64. nullopt otherwise.
std::optional<std::int64_t> parse_i64(std::string_view text) noexcept;

// RFC 3339 date-time to milliseconds since the Unix epoch: "2025-01-31T12:00:00Z",
// "2025-01-31t12:00:00.250+02:00". Fractions beyond milliseconds are truncated.
// nullopt for anything else, including a missing offset and instants before 1970.
std::optional<std::int64_t> parse_rfc3339(std::string_view text) noexcept;

// Milliseconds since the Unix epoch to RFC 3339 in UTC: "2025-01-31T12:00:00Z", with
// ".250" only when the milliseconds are not zero.
std::string format_rfc3339(std::int64_t unix_ms);

// The real-time clock in milliseconds since the Unix epoch.
std::int64_t now_unix_ms() noexcept;

// Splits on `sep`, trimming spaces and tabs around each element. "" gives an empty
// vector; "a,,b" gives {"a", "", "b"} so a caller can reject empty elements. The views
// point into `text`.
std::vector<std::string_view> split_list(std::string_view text, char sep = ',');

// Concatenates string pieces into one string: cat("no key ", id, ": see key list").
// Also sidesteps GCC 12's false -Wrestrict alarm on `"literal" + std::string`.
template <class... Parts>
std::string cat(const Parts&... parts) {
    std::string out;
    out.reserve((std::string_view(parts).size() + ... + 0));
    (out.append(std::string_view(parts)), ...);
    return out;
}

// An IPv4 or IPv6 address in network byte order. For IPv4 only bytes[0..3] are used
// and the rest are zero, so two equal addresses compare equal bytewise.
struct IpAddress {
    std::uint8_t family = 0;  // 4 or 6; 0 = not an address
    std::array<std::uint8_t, 16> bytes{};

    std::size_t size() const noexcept { return family == 4 ? 4 : 16; }
    friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// An address prefix (CIDR). Host bits beyond `length` are always zero.
struct IpPrefix {
    IpAddress network;
    std::uint8_t length = 0;  // 0..32 for IPv4, 0..128 for IPv6

    bool contains(const IpAddress& a) const noexcept;
    friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// "192.0.2.7", "2001:db8::1". Strict inet_pton forms: no zone ids, no brackets.
std::optional<IpAddress> parse_ip(std::string_view text) noexcept;

// "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32 or /128). Host bits set
// beyond the prefix are cleared ("10.1.2.3/8" -> "10.0.0.0/8"), as iptables does.
std::optional<IpPrefix> parse_ip_prefix(std::string_view text) noexcept;

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it carries; any
// other address unchanged. A dual-stack listener reports IPv4 clients this way.
IpAddress unmap_ipv4(const IpAddress& a) noexcept;

// Clears the bits of `a` beyond `length` (length is clamped to the family's width).
IpAddress mask_ip(const IpAddress& a, std::uint8_t length) noexcept;

std::string format_ip(const IpAddress& a);
// "10.0.0.0/8"; a full-length prefix prints as the bare address.
std::string format_ip_prefix(const IpPrefix& p);

// Names the calling thread (cut to the kernel's 15 bytes) so that `top -H`, `ps -L` and
// /proc/PID/task/*/comm tell the shards, the log writer and the workers apart.
void name_this_thread(std::string_view name) noexcept;

}  // namespace rr

// Small value parsers and helpers shared by the CLI, the server settings and the
// store. No I/O, no allocation beyond the returned strings.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rr {

// "500ms", "30s", "5m", "24h", "30d" (a bare integer means seconds). nullopt on
// anything else: empty, negative, unknown unit, overflow.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;

// "8MiB", "512KiB", "1GiB", "8MB", "1000", "64k". nullopt on anything else.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

// The inverse of parse_duration for display: the largest exact unit ("90s" -> "90s",
// "86400000ms" -> "1d").
std::string format_duration(std::chrono::milliseconds d);

// Unsigned decimal, no sign, no spaces, no overflow. nullopt otherwise.
std::optional<std::uint64_t> parse_u64(std::string_view text) noexcept;

}  // namespace rr

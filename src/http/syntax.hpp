// Byte classes and list helpers of the RFC 9110 / 9112 grammar, shared by the head
// parsers, the chunked decoder and the header utilities. Internal to src/http.
//
// The scanners are hand-written loops over one 256-entry class table rather than a
// generated or regex parser: this is the hot path of every request, and a table bit
// per byte is both the fastest portable test and the easiest to audit against the ABNF.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace rr::http::detail {

inline constexpr std::uint8_t kTokenChar = 1;   // tchar (RFC 9110 5.6.2)
inline constexpr std::uint8_t kTargetChar = 2;  // VCHAR 0x21-0x7E but '#': request-target bytes
inline constexpr std::uint8_t kValueChar = 4;   // field-vchar / obs-text / SP / HTAB (RFC 9110 5.5)
inline constexpr std::uint8_t kHostChar = 16;   // uri-host [":" port] bytes (RFC 3986 3.2.2)

constexpr std::array<std::uint8_t, 256> make_char_classes() noexcept {
    std::array<std::uint8_t, 256> t{};
    auto add = [&t](std::string_view chars, std::uint8_t cls) {
        for (const char c : chars) t[static_cast<unsigned char>(c)] |= cls;
    };
    for (int c = 0x21; c <= 0x7e; ++c) t[c] |= kTargetChar | kValueChar;
    t['#'] &= static_cast<std::uint8_t>(~kTargetChar);  // a fragment is never part of a request-target
    for (int c = 0x80; c <= 0xff; ++c) t[c] |= kValueChar;
    add(" \t", kValueChar);
    for (int c = '0'; c <= '9'; ++c) t[c] |= kTokenChar | kHostChar;
    for (int c = 'a'; c <= 'z'; ++c) t[c] |= kTokenChar | kHostChar;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kTokenChar | kHostChar;
    add("!#$%&'*+-.^_`|~", kTokenChar);
    // unreserved, pct-encoded, sub-delims, IP-literal brackets and the port colon.
    add("-._~%!$&'()*+,;=:[]", kHostChar);
    return t;
}

inline constexpr std::array<std::uint8_t, 256> kCharClass = make_char_classes();

inline bool has_class(char c, std::uint8_t cls) noexcept {
    return (kCharClass[static_cast<unsigned char>(c)] & cls) != 0;
}
inline bool is_token_char(char c) noexcept { return has_class(c, kTokenChar); }
inline bool is_value_char(char c) noexcept { return has_class(c, kValueChar); }
inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (const char c : s) {
        if (!is_token_char(c)) return false;
    }
    return true;
}

inline std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// Calls f(element) for each element of a comma-separated list (RFC 9110 5.6.1) with
// OWS trimmed; empty elements are passed on as empty views so each caller decides
// (Connection and Transfer-Encoding ignore them, Content-Length rejects them).
// Stops and returns false as soon as f returns false.
template <class F>
bool for_each_list_element(std::string_view list, F&& f) noexcept {
    for (;;) {
        const std::size_t comma = list.find(',');
        if (!f(trim_ows(list.substr(0, comma)))) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

// Unsigned decimal (1*DIGIT) without overflow.
inline bool parse_decimal(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty()) return false;
    std::uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

}  // namespace rr::http::detail

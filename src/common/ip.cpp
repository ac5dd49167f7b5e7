// IP addresses and prefixes for the block list. inet_pton/inet_ntop do the text forms:
// they are strict (no octal, no short IPv4 forms) and know every IPv6 spelling.
#include "ringrelay/common.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace rr {
namespace {

std::uint8_t width_bits(std::uint8_t family) noexcept {
    return family == 4 ? 32 : 128;
}

}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) noexcept {
    // inet_pton needs a NUL-terminated string; the longest IPv6 text is 45 characters.
    char buf[64];
    if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress a;
    if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
        a.family = 4;
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
        a.family = 6;
        return a;
    }
    return std::nullopt;
}

IpAddress mask_ip(const IpAddress& a, std::uint8_t length) noexcept {
    IpAddress out = a;
    std::uint8_t bits = length < width_bits(a.family) ? length : width_bits(a.family);
    for (std::size_t i = 0; i < out.bytes.size(); ++i) {
        std::size_t first_bit = i * 8;
        if (first_bit + 8 <= bits) continue;
        if (first_bit >= bits) {
            out.bytes[i] = 0;
        } else {
            auto keep = static_cast<unsigned>(bits - first_bit);
            out.bytes[i] = static_cast<std::uint8_t>(out.bytes[i] & (0xFFu << (8 - keep)));
        }
    }
    return out;
}

std::optional<IpPrefix> parse_ip_prefix(std::string_view text) noexcept {
    std::size_t slash = text.find('/');
    auto addr = parse_ip(text.substr(0, slash));
    if (!addr) return std::nullopt;
    std::uint8_t length = width_bits(addr->family);
    if (slash != std::string_view::npos) {
        std::string_view digits = text.substr(slash + 1);
        // Reject "/08" and "/+8": a prefix length is written plainly.
        if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
        auto n = parse_u64(digits);
        if (!n || *n > width_bits(addr->family)) return std::nullopt;
        length = static_cast<std::uint8_t>(*n);
    }
    return IpPrefix{mask_ip(*addr, length), length};
}

bool IpPrefix::contains(const IpAddress& a) const noexcept {
    if (a.family != network.family) return false;
    return mask_ip(a, length) == network;
}

IpAddress unmap_ipv4(const IpAddress& a) noexcept {
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (a.family != 6 || std::memcmp(a.bytes.data(), mapped, sizeof mapped) != 0) return a;
    IpAddress v4;
    v4.family = 4;
    std::memcpy(v4.bytes.data(), a.bytes.data() + 12, 4);
    return v4;
}

std::string format_ip(const IpAddress& a) {
    char buf[INET6_ADDRSTRLEN];
    int af = a.family == 4 ? AF_INET : AF_INET6;
    if (a.family == 0 || inet_ntop(af, a.bytes.data(), buf, sizeof buf) == nullptr) return "?";
    return buf;
}

std::string format_ip_prefix(const IpPrefix& p) {
    std::string out = format_ip(p.network);
    if (p.length != width_bits(p.network.family)) {
        out += '/';
        out += std::to_string(p.length);
    }
    return out;
}

}  // namespace rr

// Header-name utilities a proxy needs around the parsers: case-insensitive
// comparison, lookup, and the hop-by-hop test of RFC 9110 7.6.1.
#include <array>

#include "ringrelay/http.hpp"
#include "syntax.hpp"

namespace rr::http {

namespace {


// The fields RFC 9110 7.6.1 names as connection-specific, plus the legacy
// Proxy-Connection and the proxy authentication pair, which are for this hop only.
constexpr std::array<std::string_view, 9> kHopByHop = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization",
};

bool named_in_connection(std::string_view name, std::string_view connection_value) noexcept {
    return !detail::for_each_list_element(connection_value,
                                          [name](std::string_view option) { return !iequals(option, name); });
}

}  // namespace


const Header* find_field(std::span<const Header> fields, std::string_view name) noexcept {
    for (const Header& h : fields) {
        if (iequals(h.name, name)) return &h;
    }
    return nullptr;
}

bool is_hop_by_hop(std::string_view name, std::string_view connection_value) noexcept {
    for (const std::string_view hop : kHopByHop) {
        if (iequals(name, hop)) return true;
    }
    return !name.empty() && named_in_connection(name, connection_value);
}

bool is_hop_by_hop(std::string_view name, std::span<const Header> fields) noexcept {
    if (is_hop_by_hop(name, std::string_view())) return true;
    for (const Header& h : fields) {
        if (iequals(h.name, "connection") && named_in_connection(name, h.value)) return true;
    }
    return false;
}

}  // namespace rr::http

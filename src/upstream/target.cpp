#include "ringrelay/upstream/target.hpp"

namespace rr::upstream {

bool parse_target(std::string_view url, UpstreamTarget& out, std::string& error, bool resolve) {
    out = UpstreamTarget{};
    std::string_view rest;
    if (url.starts_with("http://")) {
        rest = url.substr(7);
    } else if (url.starts_with("https://")) {
        out.tls = true;
        rest = url.substr(8);
    } else {
        error = "upstream URL must start with http:// or https://";
        return false;
    }
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (path.find_first_of("?#") != std::string_view::npos) {
        error = "upstream URL must not have a query or fragment";
        return false;
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (authority.empty()) {
        error = "upstream URL has no host";
        return false;
    }
    const bool bracketed = authority.front() == '[';
    const auto colon = authority.rfind(':');
    const bool has_port = colon != std::string_view::npos && (!bracketed || colon > authority.find(']'));
    std::string hostport(authority);
    if (!has_port) hostport += out.tls ? ":443" : ":80";
    out.host = std::string(has_port ? authority.substr(0, colon) : authority);
    out.host_header = std::string(authority);
    out.base_path = std::string(path);
    if (!io::parse_socket_address(hostport, out.address, resolve)) {
        error = "cannot resolve upstream address '" + std::string(authority) + "'";
        return false;
    }
    return true;
}

}  // namespace rr::upstream

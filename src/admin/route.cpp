// The admin API's route table, its token check, and the dispatch from a route to
// the handler of its area.
#include <array>

#include "api.hpp"
#include "ringrelay/relay/settings.hpp"
#include "ringrelay/http.hpp"

namespace rr::admin {
namespace {

struct RouteRow {
    std::string_view pattern;  // "{id}" stands for one path segment
    std::string_view method;
    Endpoint endpoint;
};

constexpr RouteRow kRoutes[] = {
    {"/healthz", "GET", Endpoint::healthz},
    {"/healthz", "HEAD", Endpoint::healthz},
    {"/readyz", "GET", Endpoint::readyz},
    {"/readyz", "HEAD", Endpoint::readyz},
    {"/metrics", "GET", Endpoint::metrics},
    {"/admin/state", "GET", Endpoint::state},
    {"/", "GET", Endpoint::status_page},
    {"/", "HEAD", Endpoint::status_page},
    {"/admin/keys", "GET", Endpoint::keys_list},
    {"/admin/keys", "POST", Endpoint::key_create},
    {"/admin/keys/{id}", "GET", Endpoint::key_get},
    {"/admin/keys/{id}/revoke", "POST", Endpoint::key_revoke},
    {"/admin/keys/{id}/unrevoke", "POST", Endpoint::key_unrevoke},
    {"/admin/keys/{id}/rotate", "POST", Endpoint::key_rotate},
    {"/admin/keys/{id}/limits", "PUT", Endpoint::key_limits},
    {"/admin/keys/{id}/limits", "PATCH", Endpoint::key_limits},
    {"/admin/keys/{id}/release", "POST", Endpoint::key_release},
    {"/admin/channels", "GET", Endpoint::channels_list},
    {"/admin/channels", "POST", Endpoint::channel_create},
    {"/admin/channels/{id}", "GET", Endpoint::channel_get},
    {"/admin/channels/{id}", "PUT", Endpoint::channel_update},
    {"/admin/channels/{id}", "PATCH", Endpoint::channel_update},
    {"/admin/channels/{id}", "DELETE", Endpoint::channel_remove},
    {"/admin/channels/{id}/enable", "POST", Endpoint::channel_enable},
    {"/admin/channels/{id}/disable", "POST", Endpoint::channel_disable},
    {"/admin/channels/{id}/circuit", "POST", Endpoint::channel_circuit},
    {"/admin/blocks", "GET", Endpoint::blocks_list},
    {"/admin/blocks", "POST", Endpoint::block_add},
    {"/admin/blocks", "DELETE", Endpoint::block_remove},
    {"/admin/backup", "POST", Endpoint::backup},
};

// Whether path fits pattern segment by segment; sets id to the "{id}" segment.
bool path_matches(std::string_view pattern, std::string_view path, std::string_view& id) noexcept {
    while (!pattern.empty() && !path.empty()) {
        const std::size_t pe = pattern.find('/', 1);
        const std::size_t xe = path.find('/', 1);
        const std::string_view ps = pattern.substr(0, pe);
        const std::string_view xs = path.substr(0, xe);
        if (ps == "/{id}") {
            if (xs.size() < 2) return false;
            id = xs.substr(1);
        } else if (ps != xs) {
            return false;
        }
        pattern.remove_prefix(ps.size());
        path.remove_prefix(xs.size());
    }
    return pattern.empty() && path.empty();
}

bool in(Endpoint e, Endpoint first, Endpoint last) noexcept {
    return e >= first && e <= last;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes s ('+' is a space); false on a malformed escape.
bool percent_decode(std::string_view s, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] != '%') {
            out += s[i];
        } else {
            const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
            const int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
            if (lo < 0) return false;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        }
    }
    return true;
}

}  // namespace

Route route_admin(std::string_view method, std::string_view path) {
    if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    Route r;
    for (const RouteRow& row : kRoutes) {
        std::string_view id;
        if (!path_matches(row.pattern, path, id)) continue;
        if (row.method == method) {
            r.outcome = Route::found;
            r.endpoint = row.endpoint;
            r.id = id;
            r.allow.clear();
            break;
        }
        r.outcome = Route::method_not_allowed;
        r.allow += cat(r.allow.empty() ? "" : ", ", row.method);
    }
    const bool health = r.outcome != Route::not_found && (path == "/healthz" || path == "/readyz");
    const bool page = r.outcome == Route::found && r.endpoint == Endpoint::status_page;
    r.needs_token = !health && !page;
    return r;
}

std::string_view bearer_token(std::string_view authorization) noexcept {
    if (authorization.size() < 7 || !http::iequals(authorization.substr(0, 7), "bearer ")) return {};
    authorization.remove_prefix(7);
    while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
    return authorization;
}

bool token_matches(std::string_view presented, std::string_view expected) noexcept {
    if (expected.empty()) return false;
    // Every byte of expected is looked at whatever presented holds; the length
    // difference joins the accumulated difference instead of returning early.
    unsigned diff = presented.size() == expected.size() ? 0u : 1u;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
        diff |= p ^ static_cast<unsigned char>(expected[i]);
    }
    volatile unsigned sink = diff;  // keeps the loop from being cut short
    return sink == 0;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name, bool& malformed) {
    malformed = false;
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        const std::size_t eq = pair.find('=');
        std::string key;
        if (!percent_decode(pair.substr(0, eq), key) || key != name) continue;
        std::string value;
        if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), value)) {
            malformed = true;
            return std::string();
        }
        return value;
    }
    return std::nullopt;
}

Reply Reply::json(int status, std::string body) {
    Reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Reply Reply::error(int status, std::string_view code, std::string message) {
    Reply r;
    r.status = status;
    r.error_code = code;
    r.message = std::move(message);
    return r;
}

Reply Reply::from_status(const store::Status& s) {
    switch (s.code) {
    case store::Errc::invalid: return bad_request(s.message);
    case store::Errc::not_found: return error(404, "not_found", s.message);
    default: return error(500, "store_error", s.message);
    }
}

Action plan_admin(const Request& req, AdminContext& admin) {
    switch (req.endpoint) {
    case Endpoint::healthz:
    case Endpoint::readyz: return plan_health(req, admin);
    case Endpoint::metrics: return plan_metrics(req, admin);
    case Endpoint::state: return plan_state(req, admin);
    case Endpoint::status_page: return plan_status_page(req);
    default: break;
    }
    if (admin.gateway == nullptr)
        return Action::reply(
            Reply::error(404, "not_found", "keys, channels, blocks and backups exist in gateway mode only"));
    GatewayShared& gw = *admin.gateway;
    if (in(req.endpoint, Endpoint::keys_list, Endpoint::key_release)) return plan_keys(req, gw, admin.metrics);
    if (in(req.endpoint, Endpoint::channels_list, Endpoint::channel_circuit)) {
        // A channel without its own timeouts uses the server's --upstream-timeout and
        // --first-byte-timeout.
        const ServeSettings& st = admin.settings ? *admin.settings : ServeSettings{};
        return plan_channels(req, gw, store::ServerTimeouts{st.upstream_timeout_ms, st.first_byte_timeout_ms});
    }
    if (in(req.endpoint, Endpoint::blocks_list, Endpoint::block_remove)) return plan_blocks(req, gw);
    return plan_backup(req, gw);
}

}  // namespace rr::admin

// --session-from: where the gateway finds a request's session (relay/settings.hpp).
#include <string>
#include <string_view>

#include "ringrelay/relay/settings.hpp"

namespace rr::relay {
namespace {

constexpr std::string_view kHeaderPrefix = "header:";
constexpr std::size_t kMaxSources = 8;

// An HTTP field name is a token (RFC 9110 5.1); checked here so a typo fails at start.
bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s) {
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
    }
    return true;
}

bool parse_one(std::string_view item, SessionSource& out, std::string& error) {
    if (item == "prompt_cache_key") {
        out.kind = SessionSource::prompt_cache_key;
    } else if (item == "metadata.user_id") {
        out.kind = SessionSource::metadata_user_id;
    } else if (item.starts_with(kHeaderPrefix) && is_token(item.substr(kHeaderPrefix.size()))) {
        out.kind = SessionSource::header;
        out.header_name.assign(item.substr(kHeaderPrefix.size()));
    } else {
        // Built in a fresh string: GCC 12 warns falsely (-Wrestrict) when it is built in
        // place from a view it cannot prove apart from it.
        std::string message(1, '\'');
        message.append(item.data(), item.size());
        message.append("' is not a session source (prompt_cache_key, metadata.user_id, header:NAME, or none)");
        error = std::move(message);
        return false;
    }
    return true;
}

}  // namespace

std::vector<SessionSource> default_session_sources() {
    std::vector<SessionSource> out;
    std::string ignored;
    parse_session_sources("prompt_cache_key,metadata.user_id,header:session_id,header:x-session-id", out, ignored);
    return out;
}

bool parse_session_sources(std::string_view list, std::vector<SessionSource>& out, std::string& error) {
    out.clear();
    if (list == "none") return true;
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        SessionSource source;
        if (!parse_one(item, source, error)) return false;
        if (out.size() == kMaxSources) {
            error = "at most " + std::to_string(kMaxSources) + " session sources";
            return false;
        }
        out.push_back(std::move(source));
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    if (out.empty()) {
        error = "no session source given (use none to turn sessions off)";
        return false;
    }
    return true;
}

}  // namespace rr::relay

#include "introspection.hpp"

#include <memory>

#include "answer.hpp"
#include "wire.hpp"

namespace rr::mock {
namespace {

constexpr std::string_view kCounterNames[kCounterCount] = {
    "requests",      "connections_accepted", "connections_closed", "streams_started",
    "streams_completed", "streams_cut",      "streams_broken",     "hangs_aborted",
    "delays_aborted", "resets",
};

void render_stats(const MockState& state, std::string& out) {
    out += "{\"connections_open\":";
    append_uint(out, state.connections_open());
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        const auto c = static_cast<Counter>(i);
        if (c == Counter::connections_closed) continue;  // folded into connections_open
        out += ",\"";
        out += kCounterNames[i];
        out += "\":";
        append_uint(out, state.total(c));
    }
    out += '}';
}

// False when the stored head no longer parses (it always did once, so never in practice).
bool render_last(const LastRequest& last, std::string& out) {
    auto head = std::make_unique<http::RequestHead>();
    if (http::parse_request(last.head, *head).status != http::ParseStatus::complete) return false;
    out += "{\"method\":";
    append_json_string(out, head->method);
    out += ",\"path\":";
    append_json_string(out, head->path);
    out += ",\"query\":";
    append_json_string(out, head->query);
    out += head->version_minor == 0 ? ",\"http_version\":\"1.0\"" : ",\"http_version\":\"1.1\"";
    out += ",\"headers\":[";
    for (std::size_t i = 0; i < head->header_count; ++i) {
        out += i ? ",[" : "[";
        append_json_string(out, head->headers[i].name);
        out += ',';
        append_json_string(out, head->headers[i].value);
        out += ']';
    }
    out += "],\"body\":";
    append_json_string(out, last.body);
    out += '}';
    return true;
}

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The percent-decoded value of `name` in a query string; false when absent or malformed.
bool query_value(std::string_view query, std::string_view name, std::string& out) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
        out.clear();
        const std::string_view v = pair.substr(eq + 1);
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (v[i] != '%') {
                out += v[i];
                continue;
            }
            const int hi = i + 2 < v.size() ? hex_digit(v[i + 1]) : -1;
            const int lo = hi >= 0 ? hex_digit(v[i + 2]) : -1;
            if (lo < 0) return false;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        return true;
    }
    return false;
}

// POST /__mock/fail?path=P&status=S; false when the query is not usable.
bool set_failing_path(std::string_view query, MockState& state) {
    std::string path;
    std::string status_text;
    if (!query_value(query, "path", path) || path.empty() || path.front() != '/') return false;
    if (!query_value(query, "status", status_text) || status_text.empty() || status_text.size() > 3) return false;
    int status = 0;
    for (char c : status_text) {
        if (c < '0' || c > '9') return false;
        status = status * 10 + (c - '0');
    }
    if (status != 0 && (status < 400 || status > 599)) return false;
    state.set_failing_path(path, status);
    return true;
}

}  // namespace

void append_introspection_answer(const http::RequestHead& head, MockState& state,
                                 std::string& out, std::string& scratch) {
    const std::string_view what = head.path.substr(kIntrospectionPrefix.size());
    const bool http10 = head.version_minor == 0;
    scratch.clear();
    if (head.method == "GET" && what == "stats") {
        render_stats(state, scratch);
    } else if (head.method == "GET" && what == "last") {
        LastRequest last;
        if (!state.latest(last) || !render_last(last, scratch)) {
            append_error_answer(404, "no request received yet", head.keep_alive, http10, out,
                                scratch);
            return;
        }
    } else if (head.method == "POST" && what == "reset") {
        state.reset();
        scratch = "{\"ok\":true}";
    } else if (head.method == "POST" && what == "fail") {
        if (!set_failing_path(head.query, state)) {
            append_error_answer(400, "use /__mock/fail?path=/absolute/path&status=400..599 (0 clears)",
                                head.keep_alive, http10, out, scratch);
            return;
        }
        scratch = "{\"ok\":true}";
    } else {
        append_error_answer(404, "unknown mock endpoint", head.keep_alive, http10, out, scratch);
        return;
    }
    append_json_answer(200, scratch, head.keep_alive, http10, out);
}

}  // namespace rr::mock

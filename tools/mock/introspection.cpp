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
    } else {
        append_error_answer(404, "unknown mock endpoint", head.keep_alive, http10, out, scratch);
        return;
    }
    append_json_answer(200, scratch, head.keep_alive, http10, out);
}

}  // namespace rr::mock

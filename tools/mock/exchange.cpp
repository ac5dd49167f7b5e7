#include "exchange.hpp"

#include <ctime>

#include "request_json.hpp"

namespace rr::mock {

bool Exchange::streams() const noexcept {
    if (!stream || head_only || status >= 300 || status == 204) return false;
    return endpoint == Endpoint::chat_completions || endpoint == Endpoint::completions ||
           endpoint == Endpoint::responses || endpoint == Endpoint::messages;
}

void append_reply_word(std::string& out, std::uint32_t index) {
    out += 'w';
    out += std::to_string(index);
    out += ' ';
}

void append_reply_text(std::string& out, std::uint32_t words) {
    for (std::uint32_t i = 0; i < words; ++i) append_reply_word(out, i);
}

namespace {

// /v1/responses/{id}, .../input_items, .../cancel
Endpoint route_by_id(std::string_view method, std::string_view path, std::string_view* id) noexcept {
    constexpr std::string_view kPrefix = "/v1/responses/";
    const std::size_t at = path.find(kPrefix);
    if (at == std::string_view::npos) return Endpoint::none;
    std::string_view rest = path.substr(at + kPrefix.size());
    const std::size_t slash = rest.find('/');
    const std::string_view found = rest.substr(0, slash);
    const std::string_view tail = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (found.empty()) return Endpoint::none;
    Endpoint e = Endpoint::none;
    if (tail.empty() && method == "GET") e = Endpoint::response_get;
    else if (tail.empty() && method == "DELETE") e = Endpoint::response_delete;
    else if (tail == "/input_items" && method == "GET") e = Endpoint::response_items;
    else if (tail == "/cancel" && method == "POST") e = Endpoint::response_cancel;
    if (e != Endpoint::none && id != nullptr) *id = found;
    return e;
}

}  // namespace

Endpoint route(std::string_view method, std::string_view path, std::string_view* id) noexcept {
    struct Route {
        std::string_view method;
        std::string_view suffix;
        Endpoint endpoint;
    };
    static constexpr Route kRoutes[] = {
        {"POST", "/v1/chat/completions", Endpoint::chat_completions},
        {"POST", "/v1/completions", Endpoint::completions},
        {"POST", "/v1/embeddings", Endpoint::embeddings},
        {"POST", "/v1/responses", Endpoint::responses},
        {"GET", "/v1/models", Endpoint::models},
        {"POST", "/v1/messages", Endpoint::messages},
        {"POST", "/v1/messages/count_tokens", Endpoint::count_tokens},
    };
    if (method == "HEAD") method = "GET";
    if (const Endpoint e = route_by_id(method, path, id); e != Endpoint::none) return e;
    for (const Route& r : kRoutes)
        if (method == r.method && path.ends_with(r.suffix)) return r.endpoint;
    return Endpoint::none;
}

namespace {

void fail(Exchange& ex, int status, std::string_view message) {
    ex.status = status;
    ex.error.assign(message);
}

// Reads model/stream/input from a POST body; false (with ex.status set) when the
// body cannot be answered.
bool read_body(std::string_view body, RequestJsonReader& json, Exchange& ex) {
    RequestFields fields;
    if (!json.read(body, fields)) {
        fail(ex, 400, "request body is not a valid JSON object");
        return false;
    }
    if (!fields.has_model) {
        fail(ex, 400, "request body has no \"model\"");
        return false;
    }
    ex.model = std::move(fields.model);
    ex.stream = fields.stream;
    ex.input_text = std::move(fields.input_text);
    ex.inputs = fields.inputs;
    ex.include_usage = fields.include_usage;
    ex.thinking = fields.thinking;
    // A model calls a tool once, then answers in text: an agent's loop ends.
    ex.tool_name = fields.answers_tool_call ? std::string() : std::move(fields.tool_name);
    // Roughly what a tokenizer makes of English: four bytes per token.
    ex.prompt_tokens = static_cast<std::uint32_t>(body.size() / 4 + 1);
    return true;
}

void apply_status_header(Exchange& ex) {
    const int wanted = ex.behaviour.status;
    if (wanted >= 400) {
        // An explicit error status wins over whatever the request itself deserved.
        ex.status = wanted;
        ex.error = "mock status " + std::to_string(wanted);
    } else if (wanted != 0 && !ex.is_error()) {
        ex.status = wanted;
    }
}

}  // namespace

void plan_exchange(const http::RequestHead& head, std::string_view body, RequestJsonReader& json,
                   std::uint64_t serial, Exchange& ex) {
    std::string_view id;
    ex.endpoint = route(head.method, head.path, &id);
    ex.resource_id.assign(id);
    ex.input_text.clear();
    ex.stored.clear();
    ex.model.clear();
    ex.stream = false;
    ex.inputs = 1;
    ex.include_usage = false;
    ex.thinking = false;
    ex.tool_name.clear();
    ex.prompt_tokens = 0;
    ex.status = 200;
    ex.error.clear();
    ex.serial = serial;
    ex.created = static_cast<std::int64_t>(std::time(nullptr));
    ex.keep_alive = head.keep_alive;
    ex.http10 = head.version_minor == 0;
    ex.head_only = head.method == "HEAD";

    const std::string_view bad_header = read_behaviour(head, ex.behaviour);
    if (!bad_header.empty()) {
        // A bad x-mock-* header: answer 400 at once and act on none of them.
        ex.behaviour = Behaviour{};
        fail(ex, 400, bad_header);
        return;
    }
    if (ex.endpoint == Endpoint::none) {
        fail(ex, 404, "unknown path " + std::string(head.path));
    } else if (ex.endpoint != Endpoint::models && !ex.by_response_id()) {
        read_body(body, json, ex);
    }
    apply_status_header(ex);
}

}  // namespace rr::mock

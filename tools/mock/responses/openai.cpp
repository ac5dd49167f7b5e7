#include "openai.hpp"

#include "../wire.hpp"

namespace rr::mock::openai {
namespace {

constexpr std::uint32_t kMaxEmbeddings = 2048;  // OpenAI's own limit on inputs per call

std::string_view id_prefix(Endpoint e) {
    switch (e) {
        case Endpoint::chat_completions: return "chatcmpl-mock-";
        case Endpoint::responses: return "resp_mock_";
        default: return "cmpl-mock-";
    }
}

// {"id":"...","object":"<object>","created":T,"model":"M",
void append_object_start(const Exchange& ex, std::string_view object, std::string& out) {
    out += "{\"id\":\"";
    out += id_prefix(ex.endpoint);
    append_uint(out, ex.serial);
    out += "\",\"object\":\"";
    out += object;
    out += "\",\"created\":";
    append_uint(out, static_cast<std::uint64_t>(ex.created));
    out += ",\"model\":";
    append_json_string(out, ex.model);
    out += ',';
}

void append_usage(const Exchange& ex, std::string& out) {
    const std::uint32_t prompt = ex.prompt_tokens, completion = ex.completion_tokens();
    out += "\"usage\":{\"prompt_tokens\":";
    append_uint(out, prompt);
    out += ",\"completion_tokens\":";
    append_uint(out, completion);
    out += ",\"total_tokens\":";
    append_uint(out, std::uint64_t{prompt} + completion);
    out += '}';
}

void append_chat_body(const Exchange& ex, std::string& out) {
    append_object_start(ex, "chat.completion", out);
    out += R"("choices":[{"index":0,"message":{"role":"assistant","content":")";
    append_reply_text(out, ex.completion_tokens());
    out += R"("},"logprobs":null,"finish_reason":"stop"}],)";
    append_usage(ex, out);
    out += '}';
}

void append_completion_body(const Exchange& ex, std::string& out) {
    append_object_start(ex, "text_completion", out);
    out += R"("choices":[{"text":")";
    append_reply_text(out, ex.completion_tokens());
    out += R"(","index":0,"logprobs":null,"finish_reason":"stop"}],)";
    append_usage(ex, out);
    out += '}';
}

void append_embeddings_body(const Exchange& ex, std::string& out) {
    out += R"({"object":"list","data":[)";
    const std::uint32_t n = ex.inputs < kMaxEmbeddings ? ex.inputs : kMaxEmbeddings;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (i) out += ',';
        out += R"({"object":"embedding","index":)";
        append_uint(out, i);
        out += R"(,"embedding":[0.0125,-0.025,0.0375,-0.05,0.0625,-0.075,0.0875,-0.1]})";
    }
    out += "],\"model\":";
    append_json_string(out, ex.model);
    out += ",\"usage\":{\"prompt_tokens\":";
    append_uint(out, ex.prompt_tokens);
    out += ",\"total_tokens\":";
    append_uint(out, ex.prompt_tokens);
    out += "}}";
}

void append_models_body(std::string& out) {
    static constexpr std::string_view kModels[] = {"gpt-4o-mini", "gpt-4o",
                                                   "text-embedding-3-small",
                                                   "claude-3-5-haiku-latest"};
    out += R"({"object":"list","data":[)";
    bool first = true;
    for (std::string_view id : kModels) {
        if (!first) out += ',';
        first = false;
        out += R"({"id":")";
        out += id;
        out += R"(","object":"model","created":1700000000,"owned_by":"ringrelay-mock"})";
    }
    out += "]}";
}

// --- the Responses API (POST /v1/responses and /v1/responses/{id}...) ---

// Stream events: response.created, response.in_progress, output_item.added and
// content_part.added open the stream (sequence numbers 0..3), delta i is 4 + i, and
// output_text.done, content_part.done, output_item.done, response.completed end it.
constexpr std::uint32_t kOpenEvents = 4;

void append_response_id(const Exchange& ex, std::string& out) {
    out += "resp_";
    out += ex.instance;
    out += '_';
    append_uint(out, ex.serial);
}

void append_message_id(const Exchange& ex, std::string& out) {
    out += "msg_";
    out += ex.instance;
    out += '_';
    append_uint(out, ex.serial);
}

void append_output_text_part(const Exchange& ex, bool done, std::string& out) {
    out += R"({"type":"output_text","annotations":[],"text":")";
    if (done) append_reply_text(out, ex.completion_tokens());
    out += "\"}";
}

// The message output item, in progress (no content yet) or completed.
void append_message_item(const Exchange& ex, bool done, std::string& out) {
    out += R"({"id":")";
    append_message_id(ex, out);
    out += done ? R"(","type":"message","status":"completed","content":[)"
                : R"(","type":"message","status":"in_progress","content":[)";
    if (done) append_output_text_part(ex, true, out);
    out += R"(],"role":"assistant"})";
}

// The response object; in progress (response.created) it has no output or usage yet.
void append_response_object(const Exchange& ex, bool completed, std::string& out) {
    out += "{\"id\":\"";
    append_response_id(ex, out);
    out += R"(","object":"response","created_at":)";
    append_uint(out, static_cast<std::uint64_t>(ex.created));
    out += completed ? R"(,"status":"completed")" : R"(,"status":"in_progress")";
    out += R"(,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":)";
    append_json_string(out, ex.model);
    out += R"(,"output":[)";
    if (completed) append_message_item(ex, true, out);
    out += R"(],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},)"
           R"("store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],)"
           R"("top_p":1.0,"truncation":"disabled","user":null,"metadata":{},"usage":)";
    if (!completed) {
        out += "null}";
        return;
    }
    out += R"({"input_tokens":)";
    append_uint(out, ex.prompt_tokens);
    out += R"(,"input_tokens_details":{"cached_tokens":0},"output_tokens":)";
    append_uint(out, ex.completion_tokens());
    out += R"(,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":)";
    append_uint(out, std::uint64_t{ex.prompt_tokens} + ex.completion_tokens());
    out += "}}";
}

// "event: NAME\ndata: {"type":"NAME","sequence_number":N," -- the caller adds the rest.
void begin_event(std::string_view name, std::uint32_t sequence, std::string& out) {
    out += "event: ";
    out += name;
    out += "\ndata: {\"type\":\"";
    out += name;
    out += "\",\"sequence_number\":";
    append_uint(out, sequence);
    out += ',';
}

// "item_id":"msg_...","output_index":0,"content_index":0
void append_part_address(const Exchange& ex, std::string& out) {
    out += R"("item_id":")";
    append_message_id(ex, out);
    out += R"(","output_index":0,"content_index":0)";
}

void append_response_event(const Exchange& ex, std::string_view name, std::uint32_t sequence, bool completed,
                           std::string& out) {
    begin_event(name, sequence, out);
    out += "\"response\":";
    append_response_object(ex, completed, out);
    out += "}\n\n";
}

void append_responses_open(const Exchange& ex, std::string& out) {
    append_response_event(ex, "response.created", 0, false, out);
    append_response_event(ex, "response.in_progress", 1, false, out);
    begin_event("response.output_item.added", 2, out);
    out += R"("output_index":0,"item":)";
    append_message_item(ex, false, out);
    out += "}\n\n";
    begin_event("response.content_part.added", 3, out);
    append_part_address(ex, out);
    out += R"(,"part":)";
    append_output_text_part(ex, false, out);
    out += "}\n\n";
}

void append_responses_delta(const Exchange& ex, std::uint32_t index, std::string& out) {
    begin_event("response.output_text.delta", kOpenEvents + index, out);
    append_part_address(ex, out);
    out += R"(,"delta":")";
    append_reply_word(out, index);
    out += "\",\"logprobs\":[]}\n\n";
}

void append_responses_end(const Exchange& ex, std::string& out) {
    const std::uint32_t first = kOpenEvents + ex.completion_tokens();
    begin_event("response.output_text.done", first, out);
    append_part_address(ex, out);
    out += R"(,"text":")";
    append_reply_text(out, ex.completion_tokens());
    out += "\",\"logprobs\":[]}\n\n";
    begin_event("response.content_part.done", first + 1, out);
    append_part_address(ex, out);
    out += R"(,"part":)";
    append_output_text_part(ex, true, out);
    out += "}\n\n";
    begin_event("response.output_item.done", first + 2, out);
    out += R"("output_index":0,"item":)";
    append_message_item(ex, true, out);
    out += "}\n\n";
    append_response_event(ex, "response.completed", first + 3, true, out);
}

// GET /v1/responses/{id}/input_items: the input of a string "input" as one message.
std::string input_items_of(const Exchange& ex) {
    std::string out = R"({"object":"list","data":[)";
    std::string item_id = "msg_" + std::string(ex.instance) + "_in_" + std::to_string(ex.serial);
    if (!ex.input_text.empty()) {
        out += R"({"id":")" + item_id + R"(","type":"message","role":"user","status":"completed","content":[{"type":"input_text","text":)";
        append_json_string(out, ex.input_text);
        out += "}]}";
    }
    out += "],";
    if (ex.input_text.empty()) {
        out += R"("first_id":null,"last_id":null)";
    } else {
        out += R"("first_id":")" + item_id + R"(","last_id":")" + item_id + "\"";
    }
    out += R"(,"has_more":false})";
    return out;
}

}  // namespace

void append_body(const Exchange& ex, std::string& out) {
    switch (ex.endpoint) {
        case Endpoint::chat_completions: append_chat_body(ex, out); break;
        case Endpoint::completions: append_completion_body(ex, out); break;
        case Endpoint::embeddings: append_embeddings_body(ex, out); break;
        case Endpoint::responses: append_response_object(ex, true, out); break;
        case Endpoint::response_get:
        case Endpoint::response_delete:
        case Endpoint::response_items:
        case Endpoint::response_cancel: out += ex.stored; break;
        default: append_models_body(out); break;
    }
}

void append_stream_open(const Exchange& ex, std::string& out) {
    if (ex.endpoint == Endpoint::responses) append_responses_open(ex, out);
}

void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out) {
    if (ex.endpoint == Endpoint::responses) return append_responses_delta(ex, index, out);
    out += "data: ";
    if (ex.endpoint == Endpoint::chat_completions) {
        append_object_start(ex, "chat.completion.chunk", out);
        out += index == 0 ? R"("choices":[{"index":0,"delta":{"role":"assistant","content":")"
                          : R"("choices":[{"index":0,"delta":{"content":")";
        append_reply_word(out, index);
        out += R"("},"logprobs":null,"finish_reason":null}]})";
    } else {
        append_object_start(ex, "text_completion", out);
        out += R"("choices":[{"text":")";
        append_reply_word(out, index);
        out += R"(","index":0,"logprobs":null,"finish_reason":null}]})";
    }
    out += "\n\n";
}

void append_stream_end(const Exchange& ex, std::string& out) {
    if (ex.endpoint == Endpoint::responses) return append_responses_end(ex, out);
    out += "data: ";
    if (ex.endpoint == Endpoint::chat_completions) {
        append_object_start(ex, "chat.completion.chunk", out);
        out += R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],)";
    } else {
        append_object_start(ex, "text_completion", out);
        out += R"("choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}],)";
    }
    // As OpenAI does: a stream carries usage only when stream_options.include_usage asked.
    if (ex.include_usage) {
        append_usage(ex, out);
    } else {
        out.pop_back();  // the ',' after "choices"
    }
    out += "}\n\ndata: [DONE]\n\n";
}

void settle_responses(Exchange& ex, ResponseStore& store) {
    if (ex.is_error()) return;
    if (ex.endpoint == Endpoint::responses) {
        StoredResponse r;
        append_response_object(ex, true, r.object);
        r.input_items = input_items_of(ex);
        std::string id;
        append_response_id(ex, id);
        store.put(std::move(id), std::move(r));
        return;
    }
    if (!ex.by_response_id()) return;
    std::optional<StoredResponse> found = store.get(ex.resource_id);
    if (!found) {
        ex.status = 404;
        ex.error = "No response found with id '" + ex.resource_id + "'.";
        return;
    }
    switch (ex.endpoint) {
        case Endpoint::response_items: ex.stored = std::move(found->input_items); break;
        case Endpoint::response_delete:
            store.erase(ex.resource_id);
            ex.stored = "{\"id\":";
            append_json_string(ex.stored, ex.resource_id);
            ex.stored += R"(,"object":"response","deleted":true})";
            break;
        default: ex.stored = std::move(found->object); break;  // get; cancel: it completed already
    }
}

void append_error(int status, std::string_view message, std::string& out) {
    const std::string_view type = status == 429 ? "rate_limit_error"
                                  : status >= 500 ? "server_error"
                                                  : "invalid_request_error";
    out += "{\"error\":{\"message\":";
    append_json_string(out, message);
    out += ",\"type\":\"";
    out += type;
    out += "\",\"param\":null,\"code\":null}}";
}

}  // namespace rr::mock::openai

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

// The Responses API object; in_progress (response.created) has no output or usage yet.
void append_response_object(const Exchange& ex, bool completed, std::string& out) {
    out += "{\"id\":\"resp_mock_";
    append_uint(out, ex.serial);
    out += R"(","object":"response","created_at":)";
    append_uint(out, static_cast<std::uint64_t>(ex.created));
    out += completed ? R"(,"status":"completed","model":)" : R"(,"status":"in_progress","model":)";
    append_json_string(out, ex.model);
    if (!completed) {
        out += R"(,"output":[],"usage":null})";
        return;
    }
    out += R"(,"output":[{"type":"message","id":"msg_mock_)";
    append_uint(out, ex.serial);
    out += R"(","status":"completed","role":"assistant","content":[{"type":"output_text","text":")";
    append_reply_text(out, ex.completion_tokens());
    out += R"(","annotations":[]}]}],"usage":{"input_tokens":)";
    append_uint(out, ex.prompt_tokens);
    out += ",\"output_tokens\":";
    append_uint(out, ex.completion_tokens());
    out += ",\"total_tokens\":";
    append_uint(out, std::uint64_t{ex.prompt_tokens} + ex.completion_tokens());
    out += "}}";
}

}  // namespace

void append_body(const Exchange& ex, std::string& out) {
    switch (ex.endpoint) {
        case Endpoint::chat_completions: append_chat_body(ex, out); break;
        case Endpoint::completions: append_completion_body(ex, out); break;
        case Endpoint::embeddings: append_embeddings_body(ex, out); break;
        case Endpoint::responses: append_response_object(ex, true, out); break;
        default: append_models_body(out); break;
    }
}

void append_stream_open(const Exchange& ex, std::string& out) {
    if (ex.endpoint != Endpoint::responses) return;
    out += "event: response.created\ndata: {\"type\":\"response.created\",\"response\":";
    append_response_object(ex, false, out);
    out += "}\n\n";
}

void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out) {
    if (ex.endpoint == Endpoint::responses) {
        out += "event: response.output_text.delta\ndata: "
               R"({"type":"response.output_text.delta","item_id":"msg_mock_)";
        append_uint(out, ex.serial);
        out += R"(","output_index":0,"content_index":0,"delta":")";
        append_reply_word(out, index);
        out += "\"}\n\n";
        return;
    }
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
    if (ex.endpoint == Endpoint::responses) {
        out += "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":";
        append_response_object(ex, true, out);
        out += "}\n\n";
        return;
    }
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

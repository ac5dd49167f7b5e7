#include "anthropic.hpp"

#include "../wire.hpp"

namespace rr::mock::anthropic {
namespace {

// The message object up to (not including) "content"; shared by the answer and
// message_start.
void append_message_start(const Exchange& ex, std::string& out) {
    out += "{\"id\":\"msg_mock_";
    append_uint(out, ex.serial);
    out += R"(","type":"message","role":"assistant","model":)";
    append_json_string(out, ex.model);
    out += ',';
}

void append_usage(const Exchange& ex, std::uint32_t output_tokens, std::string& out) {
    out += "\"usage\":{\"input_tokens\":";
    append_uint(out, ex.prompt_tokens);
    out += ",\"output_tokens\":";
    append_uint(out, output_tokens);
    out += '}';
}

void append_event(std::string_view name, std::string& out) {
    out += "event: ";
    out += name;
    out += "\ndata: ";
}

// The fixed pieces of the thinking and tool_use blocks. The tool's input arrives in
// two partial_json pieces, as the real API splits it, so a relay that parses events
// must not expect whole JSON values in a delta.
constexpr std::string_view kThinking = "mock reasoning";
constexpr std::string_view kSignature = "mock-signature";
constexpr std::string_view kToolInputHead = R"({\"city\": )";
constexpr std::string_view kToolInputTail = R"(\"Paris\"})";

std::uint32_t text_index(const Exchange& ex) noexcept { return ex.thinking ? 1 : 0; }
std::string_view stop_reason(const Exchange& ex) noexcept { return ex.tool_name.empty() ? "end_turn" : "tool_use"; }

void append_tool_id(const Exchange& ex, std::string& out) {
    out += "\"toolu_mock_";
    append_uint(out, ex.serial);
    out += '"';
}

void append_block_start(std::uint32_t index, std::string& out) {
    append_event("content_block_start", out);
    out += R"({"type":"content_block_start","index":)";
    append_uint(out, index);
    out += R"(,"content_block":)";
}

void append_block_delta(std::uint32_t index, std::string& out) {
    append_event("content_block_delta", out);
    out += R"({"type":"content_block_delta","index":)";
    append_uint(out, index);
    out += R"(,"delta":)";
}

void append_block_stop(std::uint32_t index, std::string& out) {
    append_event("content_block_stop", out);
    out += R"({"type":"content_block_stop","index":)";
    append_uint(out, index);
    out += "}\n\n";
}

void append_thinking_block(std::string& out) {
    append_block_start(0, out);
    out += R"({"type":"thinking","thinking":"","signature":""}})" "\n\n";
    append_block_delta(0, out);
    out += R"({"type":"thinking_delta","thinking":")";
    out += kThinking;
    out += "\"}}\n\n";
    append_block_delta(0, out);
    out += R"({"type":"signature_delta","signature":")";
    out += kSignature;
    out += "\"}}\n\n";
    append_block_stop(0, out);
}

void append_tool_block(const Exchange& ex, std::string& out) {
    const std::uint32_t index = text_index(ex) + 1;
    append_block_start(index, out);
    out += R"({"type":"tool_use","id":)";
    append_tool_id(ex, out);
    out += R"(,"name":)";
    append_json_string(out, ex.tool_name);
    out += R"(,"input":{}}})" "\n\n";
    for (std::string_view piece : {kToolInputHead, kToolInputTail}) {
        append_block_delta(index, out);
        out += R"({"type":"input_json_delta","partial_json":")";
        out += piece;
        out += "\"}}\n\n";
    }
    append_block_stop(index, out);
}

}  // namespace

void append_body(const Exchange& ex, std::string& out) {
    if (ex.endpoint == Endpoint::count_tokens) {
        out += "{\"input_tokens\":";
        append_uint(out, ex.prompt_tokens);
        out += '}';
        return;
    }
    append_message_start(ex, out);
    out += "\"content\":[";
    if (ex.thinking) {
        out += R"({"type":"thinking","thinking":")";
        out += kThinking;
        out += R"(","signature":")";
        out += kSignature;
        out += "\"},";
    }
    out += R"({"type":"text","text":")";
    append_reply_text(out, ex.completion_tokens());
    out += "\"}";
    if (!ex.tool_name.empty()) {
        out += R"(,{"type":"tool_use","id":)";
        append_tool_id(ex, out);
        out += R"(,"name":)";
        append_json_string(out, ex.tool_name);
        out += R"(,"input":{"city":"Paris"}})";
    }
    out += R"(],"stop_reason":")";
    out += stop_reason(ex);
    out += R"(","stop_sequence":null,)";
    append_usage(ex, ex.completion_tokens(), out);
    out += '}';
}

void append_stream_open(const Exchange& ex, std::string& out) {
    append_event("message_start", out);
    out += R"({"type":"message_start","message":)";
    append_message_start(ex, out);
    out += R"("content":[],"stop_reason":null,"stop_sequence":null,)";
    append_usage(ex, 1, out);
    out += "}}\n\n";
    append_event("ping", out);
    out += "{\"type\":\"ping\"}\n\n";
    if (ex.thinking) append_thinking_block(out);
    append_block_start(text_index(ex), out);
    out += R"({"type":"text","text":""}})" "\n\n";
}

void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out) {
    append_block_delta(text_index(ex), out);
    out += R"({"type":"text_delta","text":")";
    append_reply_word(out, index);
    out += "\"}}\n\n";
}

void append_stream_end(const Exchange& ex, std::string& out) {
    append_block_stop(text_index(ex), out);
    if (!ex.tool_name.empty()) append_tool_block(ex, out);
    append_event("message_delta", out);
    out += R"({"type":"message_delta","delta":{"stop_reason":")";
    out += stop_reason(ex);
    out += R"(","stop_sequence":null},)";
    append_usage(ex, ex.completion_tokens(), out);
    out += "}\n\n";
    append_event("message_stop", out);
    out += "{\"type\":\"message_stop\"}\n\n";
}

void append_error(int status, std::string_view message, std::string& out) {
    std::string_view type = "api_error";
    switch (status) {
        case 400: type = "invalid_request_error"; break;
        case 401: type = "authentication_error"; break;
        case 403: type = "permission_error"; break;
        case 404: type = "not_found_error"; break;
        case 413: type = "request_too_large"; break;
        case 429: type = "rate_limit_error"; break;
        case 529: type = "overloaded_error"; break;
        default: break;
    }
    out += R"({"type":"error","error":{"type":")";
    out += type;
    out += "\",\"message\":";
    append_json_string(out, message);
    out += "}}";
}

}  // namespace rr::mock::anthropic

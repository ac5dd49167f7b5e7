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

}  // namespace

void append_body(const Exchange& ex, std::string& out) {
    append_message_start(ex, out);
    out += R"("content":[{"type":"text","text":")";
    append_reply_text(out, ex.completion_tokens());
    out += R"("}],"stop_reason":"end_turn","stop_sequence":null,)";
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
    append_event("content_block_start", out);
    out += R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})";
    out += "\n\n";
}

void append_stream_delta(const Exchange&, std::uint32_t index, std::string& out) {
    append_event("content_block_delta", out);
    out += R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")";
    append_reply_word(out, index);
    out += "\"}}\n\n";
}

void append_stream_end(const Exchange& ex, std::string& out) {
    append_event("content_block_stop", out);
    out += "{\"type\":\"content_block_stop\",\"index\":0}\n\n";
    append_event("message_delta", out);
    out += R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)";
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

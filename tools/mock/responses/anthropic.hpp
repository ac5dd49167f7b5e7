// Anthropic-shaped answers for POST /v1/messages: the message object, its SSE
// stream (message_start, ping, content_block_start, content_block_delta x N,
// content_block_stop, message_delta with usage, message_stop, each with an
// `event:` line) and the error object. Same contract as responses/openai.hpp.
// A request with "thinking": {"type":"enabled"} gets a thinking block first
// (thinking_delta, signature_delta); one with "tools" ends with a tool_use block
// calling the first tool (input_json_delta in two pieces, stop_reason "tool_use"),
// unless its last message hands a tool result back: then it answers in text, so an
// agent's loop ends as it would with a model.
// POST /v1/messages/count_tokens answers {"input_tokens": N}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../exchange.hpp"

namespace rr::mock::anthropic {

void append_body(const Exchange& ex, std::string& out);
// message_start + content_block_start.
void append_stream_open(const Exchange& ex, std::string& out);
// content_block_delta number index (0-based).
void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out);
// content_block_stop + message_delta (usage) + message_stop.
void append_stream_end(const Exchange& ex, std::string& out);
// {"type":"error","error":{"type":...,"message":...}}
void append_error(int status, std::string_view message, std::string& out);

}  // namespace rr::mock::anthropic

// Anthropic-shaped answers for POST /v1/messages: the message object, its SSE
// stream (message_start, content_block_start, content_block_delta x N,
// content_block_stop, message_delta with usage, message_stop, each with an
// `event:` line) and the error object. Same contract as responses/openai.hpp.
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

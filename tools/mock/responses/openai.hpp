// OpenAI-shaped answers: chat.completion, text_completion, embeddings list,
// response (the Responses API) and the model list, plus their SSE stream events.
// Each function appends text (JSON, or whole SSE events ending in a blank line) to
// out; the caller adds the HTTP head and chunk framing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../exchange.hpp"
#include "../response_store.hpp"

namespace rr::mock::openai {

// The non-streamed JSON body for ex.endpoint (any OpenAI endpoint).
void append_body(const Exchange& ex, std::string& out);

// Events sent with the stream head, before the first delta (only the Responses API
// has one: response.created).
void append_stream_open(const Exchange& ex, std::string& out);
// Delta event number index (0-based).
void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out);
// The last events: one carrying `usage`, then `data: [DONE]` (chat and completions)
// or response.completed (the Responses API, which has no [DONE]).
void append_stream_end(const Exchange& ex, std::string& out);

// The Responses API's memory: a successful POST /v1/responses stores its response
// (and input items) under its id; a /v1/responses/{id}... request finds it (ex.stored
// gets its answer; DELETE removes it) or becomes 404. Call after plan_exchange.
void settle_responses(Exchange& ex, ResponseStore& store);

// {"error":{"message":...,"type":...,"param":null,"code":null}}
void append_error(int status, std::string_view message, std::string& out);

}  // namespace rr::mock::openai

// One request/response exchange of the mock: which endpoint was asked for, what the
// request said (model, stream) and how the answer should look (status, behaviour).
// Built once per request by plan_exchange; owns its strings, so it outlives the
// receive buffer the request was parsed from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <ringrelay/http.hpp>

#include "behaviours.hpp"

namespace rr::mock {

class RequestJsonReader;

enum class Endpoint : std::uint8_t {
    none,              // unknown path: 404
    chat_completions,  // POST /v1/chat/completions
    completions,       // POST /v1/completions
    embeddings,        // POST /v1/embeddings
    responses,         // POST /v1/responses
    response_get,      // GET    /v1/responses/{id}
    response_delete,   // DELETE /v1/responses/{id}
    response_items,    // GET    /v1/responses/{id}/input_items
    response_cancel,   // POST   /v1/responses/{id}/cancel
    models,            // GET  /v1/models
    messages,          // POST /v1/messages (Anthropic)
    count_tokens,      // POST /v1/messages/count_tokens (Anthropic)
};

struct Exchange {
    Endpoint endpoint = Endpoint::none;
    Behaviour behaviour;
    std::string model;
    bool stream = false;
    std::uint32_t inputs = 1;         // embeddings: how many vectors to return
    bool include_usage = false;       // chat/completions streams: usage in the last chunk
    bool thinking = false;            // messages: a thinking block comes first
    std::string tool_name;            // messages: the answer ends with a call of it
    std::uint32_t prompt_tokens = 0;  // estimated from the body size
    int status = 200;
    std::string error;                // message of an error answer (status >= 400)
    std::uint64_t serial = 0;         // makes ids unique within this process
    std::int64_t created = 0;         // unix seconds
    bool keep_alive = true;
    bool http10 = false;
    bool head_only = false;           // HEAD: the GET answer's head, no body
    std::string_view instance = "mock";  // the mock's name, in response ids (MockState::name)
    std::string resource_id;          // the {id} of /v1/responses/{id}...
    std::string input_text;           // POST /v1/responses: "input" when it is a string
    std::string stored;               // by-id endpoints: the JSON answer found in the store

    bool anthropic() const noexcept { return endpoint == Endpoint::messages || endpoint == Endpoint::count_tokens; }
    // One of the /v1/responses/{id}... endpoints (answered from the ResponseStore).
    bool by_response_id() const noexcept {
        return endpoint == Endpoint::response_get || endpoint == Endpoint::response_delete ||
               endpoint == Endpoint::response_items || endpoint == Endpoint::response_cancel;
    }
    bool is_error() const noexcept { return status >= 400; }
    // An SSE answer: asked for, successful, and an endpoint that can stream.
    bool streams() const noexcept;
    // Tokens of the generated answer: one per delta event (x-mock-chunks).
    std::uint32_t completion_tokens() const noexcept { return behaviour.chunks; }
};

// The generated answer is the words "w0 w1 ... w<N-1> " (N = x-mock-chunks); delta
// event i of a stream carries word i, a non-streamed answer carries all of them.
void append_reply_word(std::string& out, std::uint32_t index);
void append_reply_text(std::string& out, std::uint32_t words);

// Endpoints match on the end of the path, so a channel base URL with a prefix
// ("http://host/openai" + "/v1/chat/completions") reaches the same answer. HEAD
// matches what GET matches.
// /v1/responses/{id}[/input_items|/cancel] also matches after a prefix; *id gets {id}.
Endpoint route(std::string_view method, std::string_view path, std::string_view* id = nullptr) noexcept;

// Fills ex for a request on a non-/__mock path: endpoint, behaviour headers, body
// fields, and the status to answer with (404 unknown path, 400 bad JSON or a bad
// x-mock-* value, x-mock-status when given). body is the decoded request body.
void plan_exchange(const http::RequestHead& head, std::string_view body, RequestJsonReader& json,
                   std::uint64_t serial, Exchange& ex);

}  // namespace rr::mock

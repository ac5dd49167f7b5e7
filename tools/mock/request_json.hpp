// Reads the few fields the mock needs from a JSON request body, with simdjson
// On-Demand. One reader per event loop: it owns the parser and the padded copy of
// the body (On-Demand needs SIMDJSON_PADDING readable bytes past the end).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rr::mock {

struct RequestFields {
    bool has_model = false;
    std::string model;        // unescaped
    bool stream = false;      // "stream": true
    std::uint32_t inputs = 1; // "input": array -> its length (embeddings)
    bool include_usage = false;  // "stream_options": {"include_usage": true}
    bool thinking = false;    // Anthropic "thinking": {"type":"enabled",...}
    std::string tool_name;    // the first of "tools" (its "name"), empty when none
    // The last of "messages" carries a tool's result (Anthropic "tool_result" content,
    // OpenAI role "tool"): the model has had its tool call answered.
    bool answers_tool_call = false;
    std::string input_text;   // "input": a string (the Responses API), unescaped
};

class RequestJsonReader {
public:
    RequestJsonReader();
    ~RequestJsonReader();
    RequestJsonReader(const RequestJsonReader&) = delete;
    RequestJsonReader& operator=(const RequestJsonReader&) = delete;

    // Fills out from body. Returns false when body is not one JSON object (syntax
    // error, trailing bytes, or a "model"/"stream" of the wrong type). Values of
    // other fields are skipped, so their inside is checked only for structure.
    bool read(std::string_view body, RequestFields& out) noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace rr::mock

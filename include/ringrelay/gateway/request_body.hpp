// The two fields of a client's JSON body the gateway routes on: `model` and
// `stream`, read with simdjson On-Demand (never a hand-written scanner), and the
// rewrite of `model` when a channel maps it to another name.
//
// Ownership: the body is the caller's string; the returned RequestFields own copies
// of what they name (model, session fields) and hold offsets, not views, into the
// body, so they stay true until the body is edited. BodyEdit::text must outlive the
// apply. The simdjson parser is the caller's (one per shard thread).
//
// Errors: a body that does not give the fields is RequestFields::error (describe()
// words the 400), never an exception; the edits may throw std::bad_alloc.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <optional>
#include <string_view>
#include <span>

namespace rr::gateway {

enum class BodyError : std::uint8_t {
    none,
    not_json,          // not parseable JSON
    not_object,        // JSON, but not an object
    no_model,          // no "model" field
    model_not_string,  // "model" is not a non-empty string
    duplicate_model,   // "model" more than once at the top level (which one would the upstream read?)
};

// A sentence for the 400 invalid_request answer.
std::string_view describe(BodyError e) noexcept;

// One replacement of body[at, at + length) by text: what makes a request ask for usage.
struct BodyEdit {
    std::size_t at = 0;
    std::size_t length = 0;
    std::string_view text;  // a constant
};

struct RequestFields {
    BodyError error = BodyError::none;
    std::string model;            // unescaped
    bool stream = false;          // "stream": true
    std::size_t model_at = 0;     // the model's JSON string token (quotes included) in the body
    std::size_t model_length = 0;
    // What names the client's session, if sent (unescaped; empty when absent or not a
    // string): "prompt_cache_key" and "metadata": {"user_id": ...}.
    std::string prompt_cache_key;
    std::string metadata_user_id;
    // "stream_options": {"include_usage": true} already there; else, when the body's
    // shape allows it, the one edit that would add it (a channel's --inject-usage).
    bool usage_asked = false;
    std::optional<BodyEdit> ask_usage;
};

// Reads model and stream from body[0, size). body must have SIMDJSON_PADDING
// readable bytes past size (capacity >= size + SIMDJSON_PADDING); use
// pad_for_simdjson() to make sure. parser is the caller's (one per shard: it keeps its
// buffers between calls).
RequestFields read_request_fields(simdjson::ondemand::parser& parser, std::string& body);

// Grows body's capacity so that simdjson may read SIMDJSON_PADDING bytes past its end.
void pad_for_simdjson(std::string& body);

// The JSON string token (quotes included) of a model name.
std::string model_token(std::string_view model);
// The edit that puts token in place of the body's model.
inline BodyEdit model_edit(const RequestFields& fields, std::string_view token) noexcept {
    return BodyEdit{fields.model_at, fields.model_length, token};
}
// Replaces the model token at fields.model_at with the JSON string of new_model.
void rewrite_model(std::string& body, const RequestFields& fields, std::string_view new_model);

// Applies edits (each made against the same original body, none overlapping): from the
// last to the first, so the offsets of the earlier ones stay true. Reorders edits.
void apply_edits(std::string& body, std::span<BodyEdit> edits);

}  // namespace rr::gateway

// Token usage read from an upstream response body as it streams past. The relay forwards
// the bytes untouched; the tap only looks at them, for TPM and the quota (rate_limits.hpp).
//
//     UsageTap tap(content_type_is_event_stream);
//     for each decoded body piece: tap.feed(piece);   // any splits, any number of calls
//     TokenUsage u = tap.result();                     // at the end (or at any time)
//
// Feed the DECODED payload (after the chunked decoder); a compressed body
// (Content-Encoding) carries no readable usage and gives found == false.
//
// What it finds. Every JSON object that is the value of a key named "usage", at any
// depth (top level for OpenAI and Anthropic JSON, inside "response" for /v1/responses
// stream events, inside "message" for Anthropic's message_start). Of each, these integer
// fields; other fields, and values that are not non-negative integers, are ignored:
//   prompt_tokens, completion_tokens, total_tokens            OpenAI chat, embeddings
//   input_tokens, output_tokens, total_tokens                 OpenAI /v1/responses
//   input_tokens, output_tokens, cache_creation_input_tokens,
//   cache_read_input_tokens                                   Anthropic
// A field seen again replaces its earlier value (later usage objects are cumulative:
// OpenAI's final stream chunk, Anthropic's message_delta after message_start), so the
// fields of different objects combine. "usage": null, as OpenAI streams carry in every
// chunk before the last, is skipped without parsing anything. The result:
//   prompt_tokens     = prompt_tokens if seen, else input_tokens
//                       + cache_creation_input_tokens + cache_read_input_tokens
//   completion_tokens = completion_tokens if seen, else output_tokens
//   total_tokens      = total_tokens if seen, else prompt_tokens + completion_tokens
//   found             = at least one of these fields was seen
// (OpenAI's prompt_tokens and input_tokens already include cached tokens; Anthropic's
// input_tokens does not, hence the cache fields.)
//
// How. A byte scanner looks for the string token "usage" (opened by a quote that no
// backslash escapes, so text inside a JSON string never matches) followed by ':' and
// '{', then copies the object, tracking strings and nesting, up to its closing brace,
// and parses that small piece with simdjson On-Demand. Nothing else is kept, so memory
// is bounded by kMaxUsageObject whatever the body's size: a usage object larger than
// that is skipped. Between usage objects the scanner jumps from quote to quote
// (memchr). Measured (2 cores, loaded): several GB/s over an embeddings body (numbers),
// 0.7 GB/s over quote-dense text, about 0.7 us per 170-byte SSE chunk, about 1 us for
// a small JSON response including the parse.
//
// SSE mode (text/event-stream) frames the bytes as SSE lines (LF, CRLF or CR): only the
// values of `data:` fields reach the scanner, the lines of one event joined with '\n'
// as the SSE spec joins them, and a blank line (end of event) abandons any half-read
// usage object. Comments (": ping"), event:/id:/retry: lines and "[DONE]" are ignored.
// Events are not buffered: only a usage object, never the rest of an event, is kept.
//
// Errors. Malformed input (truncated, garbage, a usage object that is not JSON) is
// skipped; feed() and result() never throw and never read outside the given bytes.
// A tap allocates only when it meets a usage object: its copy (a few hundred bytes,
// growing up to kMaxUsageObject + padding) and simdjson's parser buffers for each one
// parsed. Allocation failure terminates (feed() is noexcept).
//
// Threads. A UsageTap is used by one thread at a time (the shard relaying the response).
// LIFETIME. feed() does not keep the view it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rr::gateway {

struct TokenUsage {
    bool found = false;  // false: the body carried no usage object with a known field
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
    std::uint64_t total_tokens = 0;
};

class UsageTap {
public:
    // Largest usage object kept and parsed (real ones are a few hundred bytes).
    static constexpr std::size_t kMaxUsageObject = 4096;

    // sse: the response's Content-Type is text/event-stream; else the body is JSON.
    explicit UsageTap(bool sse) noexcept : sse_(sse) {}

    // The next bytes of the body, split anywhere.
    void feed(std::string_view bytes) noexcept;

    // The usage seen so far (see above). Cheap; may be called at any time.
    TokenUsage result() const noexcept;

    bool sse() const noexcept { return sse_; }

private:
    // The token fields the tap knows; Fields::seen has bit (1 << Field) set once
    // value[Field] was read.
    enum Field : std::uint8_t {
        prompt_tokens,
        completion_tokens,
        total_tokens,
        input_tokens,
        output_tokens,
        cache_creation_input_tokens,
        cache_read_input_tokens,
        field_count,
    };
    struct Fields {
        std::uint64_t value[field_count] = {};
        std::uint8_t seen = 0;
        bool has(Field f) const noexcept { return (seen & (1u << f)) != 0; }
    };

    // The JSON scanner (both modes).
    enum class Scan : std::uint8_t {
        seek,    // looking for the 7 bytes "usage" (matched_: how many ended the last bytes)
        colon,   // after "usage": whitespace, then ':'
        value,   // after ':': whitespace, then '{' (anything else: not an object)
        object,  // copying the object into object_
    };
    // The SSE line framer.
    enum class Line : std::uint8_t {
        start,  // at the start of a line
        name,   // reading a field name (name_len_ bytes of it so far)
        space,  // after "data:", an optional space
        data,   // in a data value: bytes go to the scanner
        skip,   // in a line that is not data
    };

    // SSE framing
    void feed_sse(std::string_view bytes) noexcept;
    std::size_t start_line(char c) noexcept;
    void read_field_name(char c) noexcept;
    std::size_t read_value(std::string_view bytes, std::size_t i) noexcept;
    void begin_data() noexcept;
    void end_line(char eol) noexcept;
    void end_event() noexcept;
    // JSON scanning: each step consumes from bytes[i] on and returns where it stopped.
    void scan(std::string_view bytes) noexcept;
    std::size_t seek(std::string_view bytes, std::size_t i) noexcept;
    std::size_t found_key(std::size_t next) noexcept;
    std::size_t after_key(std::string_view bytes, std::size_t i) noexcept;
    std::size_t copy_object(std::string_view bytes, std::size_t i) noexcept;
    bool quote_is_escaped(std::string_view bytes, std::size_t i) const noexcept;
    void finish_object() noexcept;
    void drop_object() noexcept;
    static bool parse_usage(std::string& object, Fields& out) noexcept;
    void reset_scan() noexcept;

    bool sse_;
    // scanner
    Scan scan_ = Scan::seek;
    std::uint8_t matched_ = 0;
    bool odd_backslashes_ = false;  // the bytes scanned so far end in an odd run of '\'
    bool in_string_ = false;        // in object: inside a JSON string
    bool escaped_ = false;          // in object: the previous byte was an escaping '\'
    std::uint32_t depth_ = 0;       // in object: open braces
    std::string object_;            // the usage object being copied
    // SSE framer
    Line line_ = Line::start;
    std::uint8_t name_len_ = 0;
    bool name_is_data_ = true;      // the field name read so far is a prefix of "data"
    bool after_cr_ = false;         // the last byte ended a line with CR: skip an LF next
    bool event_has_data_ = false;   // a data line of this event was passed on already
    // what was found
    Fields fields_;
};

}  // namespace rr::gateway

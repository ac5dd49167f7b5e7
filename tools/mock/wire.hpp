// Bytes on the wire: HTTP/1.1 response heads, chunk framing and JSON string
// escaping. Every function appends to a caller-owned std::string and never fails.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rr::mock {

// How the body after a head is delimited.
enum class Framing : std::uint8_t {
    none,            // 1xx/204/304: no body at all
    content_length,  // Content-Length: n
    chunked,         // Transfer-Encoding: chunked
    until_close,     // HTTP/1.0 peers get streams delimited by the connection closing
};

struct HeadSpec {
    int status = 200;
    std::string_view content_type = "application/json";
    Framing framing = Framing::content_length;
    std::uint64_t content_length = 0;
    bool keep_alive = true;     // false: "Connection: close"
    bool http10_peer = false;   // a keep-alive HTTP/1.0 peer needs "Connection: keep-alive"
    bool event_stream = false;  // adds Cache-Control: no-cache
    // OpenAI names the account a request was billed to: openai-organization and
    // openai-project (a relay must not show its clients the reseller's account).
    bool openai_account = false;
};

inline constexpr std::string_view kMockOrganization = "org-mock-upstream-account";
inline constexpr std::string_view kMockProject = "proj_mock_upstream_account";

void append_head(std::string& out, const HeadSpec& spec);

// One chunk of a chunked body: hex size, CRLF, payload, CRLF. Empty payloads are
// skipped (an empty chunk would end the body).
void append_chunk(std::string& out, std::string_view payload);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// Appends s as the inside of a JSON string (no quotes): escapes ", \ and controls;
// invalid UTF-8 bytes become \u00XX so the output is always valid JSON.
void append_json_escaped(std::string& out, std::string_view s);
// Appends "s" with quotes.
void append_json_string(std::string& out, std::string_view s);
void append_uint(std::string& out, std::uint64_t v);

}  // namespace rr::mock

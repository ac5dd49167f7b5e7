// Responses the gateway writes itself (errors, JSON answers), appended to the
// caller's string. The views passed in are read during the call only; nothing is
// kept. No I/O, no errors but std::bad_alloc. Any thread.
#pragma once

#include <string>
#include <string_view>

namespace rr::relay {

// Appends a full response: status line, Content-Type: application/json,
// Content-Length, X-Request-Id, Connection, extra header lines, body.
void append_json_response(std::string& out, int status, std::string_view body, std::string_view request_id,
                          bool keep_alive, std::string_view extra_headers = {});

// The OpenAI-style error body of REFERENCE.md section 3:
// {"error":{"message":"...","type":"ringrelay_error","code":"..."}}
std::string error_body(std::string_view code, std::string_view message);

// A gateway error response, with X-Ringrelay-Error: <code>.
void append_error_response(std::string& out, int status, std::string_view code, std::string_view message,
                           std::string_view request_id, bool keep_alive, std::string_view extra_headers = {});

}  // namespace rr::relay

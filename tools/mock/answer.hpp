// Whole HTTP answers: an Exchange's JSON answer or stream pieces, framed with a
// head and (for streams) chunk framing, in the dialect of the endpoint. scratch is
// a caller-owned buffer reused between calls to avoid an allocation per event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "exchange.hpp"

namespace rr::mock {

// Head + JSON body (the endpoint's answer, or its error object when ex.is_error());
// for HEAD the head alone, with the Content-Length the body would have. Returns the
// size of the body appended, so close-mid-stream can cut it.
std::size_t append_answer(const Exchange& ex, std::string& out, std::string& scratch);

// A stream is head + open, then delta 0..N-1, then end. HTTP/1.0 peers get the
// events unframed and the connection closes after the end (they cannot read chunks).
bool stream_keeps_alive(const Exchange& ex) noexcept;
void append_stream_head(const Exchange& ex, std::string& out, std::string& scratch);
void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out,
                         std::string& scratch);
// The usage events and, for chunked streams, the terminating chunk.
void append_stream_end(const Exchange& ex, std::string& out, std::string& scratch);

// A JSON answer outside any exchange (introspection, malformed requests).
void append_json_answer(int status, std::string_view body, bool keep_alive, bool http10,
                        std::string& out);
// An OpenAI-shaped error answer outside any exchange.
void append_error_answer(int status, std::string_view message, bool keep_alive, bool http10,
                         std::string& out, std::string& scratch);

}  // namespace rr::mock

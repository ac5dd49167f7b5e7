// The per-request behaviour a test asks for with x-mock-* request headers (REFERENCE.md
// section 6). Header names are matched case-insensitively; values are decimal.
//
//   x-mock-delay-ms: N          wait N ms before the response head
//   x-mock-status: S            answer with status S (>= 400: a JSON error body)
//   x-mock-chunks: N            stream shape: N delta events (default 3)
//   x-mock-chunk-delay-ms: N    stream shape: N ms between events (default 0)
//   x-mock-first-event-delay-ms: N  stream shape: N ms between the head and the first event
//   x-mock-behavior: hang | reset | close-mid-stream
//
// `ringrelay-mock --default NAME=VALUE` gives every request x-mock-NAME: VALUE unless
// it sends that header itself (e.g. one mock that always hangs, beside one that answers).
#pragma once

#include <cstdint>
#include <string_view>

#include <ringrelay/http.hpp>

namespace rr::mock {

enum class Mode : std::uint8_t {
    normal,
    hang,              // never answer; hold the connection until the peer closes
    reset,             // read the request, then close with RST (SO_LINGER 0)
    close_mid_stream,  // send the head and the first half of the body, then close
};

struct Behaviour {
    Mode mode = Mode::normal;
    std::uint32_t delay_ms = 0;
    int status = 0;  // 0: the endpoint's own status
    std::uint32_t chunks = 3;
    std::uint32_t chunk_delay_ms = 0;
    std::uint32_t first_event_delay_ms = 0;
};

inline constexpr std::uint32_t kMaxDelayMs = 3'600'000;
inline constexpr std::uint32_t kMaxChunks = 1'000'000;

// Fills out from the x-mock-* headers of head. Returns an empty view when every
// such header is valid, otherwise a sentence naming the bad one (answered with 400).
// Starts from the --default behaviour.
std::string_view read_behaviour(const http::RequestHead& head, Behaviour& out) noexcept;

// Adds x-mock-NAME: VALUE to the defaults (at start-up, before any request). Returns
// an empty view, or why it is not valid.
std::string_view set_default_behaviour(std::string_view name, std::string_view value) noexcept;

}  // namespace rr::mock

// BodyTracker: follows one message body through the bytes that pass a proxy, so
// the bytes can be forwarded untouched while we still know where the message ends
// (keep-alive needs that) and can decode chunked data when the receiver needs it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringrelay/http.hpp"

namespace rr::relay {

class BodyTracker {
public:
    BodyTracker(http::BodyKind kind, std::uint64_t length, std::uint64_t max_body = UINT64_MAX) noexcept;

    // How many leading bytes of `in` belong to this body; the rest is the next
    // message. With decoded != nullptr the chunk payload is appended there (for a
    // receiver that cannot take chunked framing).
    std::size_t measure(std::string_view in, std::string* decoded = nullptr) noexcept;
    // For close-delimited bodies: the sender closed, so the body is complete.
    void end_of_stream() noexcept { if (kind_ == http::BodyKind::until_close) done_ = true; }

    // Shows every payload span (decoded, for chunked bodies) to fn as it passes, e.g.
    // to a UsageTap; the bytes forwarded stay untouched.
    void set_tap(void (*fn)(void*, std::string_view), void* ctx) noexcept {
        tap_ = fn;
        tap_ctx_ = ctx;
    }

    bool done() const noexcept { return done_; }
    http::Error error() const noexcept { return error_; }
    std::uint64_t bytes() const noexcept { return bytes_; }
    http::BodyKind kind() const noexcept { return kind_; }

private:
    http::BodyKind kind_;
    std::uint64_t remaining_;
    std::uint64_t bytes_ = 0;
    bool done_;
    http::Error error_ = http::Error::none;
    http::ChunkedDecoder chunked_;
    void (*tap_)(void*, std::string_view) = nullptr;
    void* tap_ctx_ = nullptr;
};

}  // namespace rr::relay

// BodyTracker: follows one message body through the bytes that pass a proxy, so
// the bytes can be forwarded untouched while we still know where the message ends
// (keep-alive needs that) and can decode chunked data when the receiver needs it.
//
// Ownership: a tracker owns only its counters and chunked-decoder state; it never
// keeps the bytes given to measure() (it appends decoded payload to the caller's
// string). The observer is borrowed. One tracker per message body, used by the
// shard thread that relays it.
//
// Errors: none thrown. A framing error (bad chunk syntax, a chunked body over max_body) stops
// the tracker: error() says which and every later measure() answers 0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringrelay/http.hpp"

namespace rr::relay {

// What a layer above the relay watches of an upstream's response body as it passes
// (the gateway: token usage, the response id). Called on the shard's thread, never
// with the body's bytes changed; an observer must not throw.
class ResponseBodyObserver {
public:
    // The next payload bytes (decoded from chunked framing), split anywhere.
    virtual void on_body(std::string_view bytes) noexcept = 0;
    // The body is complete, before its last bytes go to the client; at most once per
    // request (RequestContext::body_observer is cleared when it is called).
    virtual void on_body_end() noexcept = 0;

protected:
    ~ResponseBodyObserver() = default;
};

class BodyTracker {
public:
    BodyTracker(http::BodyKind kind, std::uint64_t length, std::uint64_t max_body = UINT64_MAX) noexcept;

    // How many leading bytes of `in` belong to this body; the rest is the next
    // message. With decoded != nullptr the chunk payload is appended there (for a
    // receiver that cannot take chunked framing).
    std::size_t measure(std::string_view in, std::string* decoded = nullptr) noexcept;
    // For close-delimited bodies: the sender closed, so the body is complete.
    void end_of_stream() noexcept { if (kind_ == http::BodyKind::until_close) done_ = true; }

    // Shows every payload span (decoded, for chunked bodies) to observer as it passes
    // (the gateway's usage count); the bytes forwarded stay untouched. observer must
    // outlive the tracker's use.
    void set_observer(ResponseBodyObserver* observer) noexcept { observer_ = observer; }

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
    ResponseBodyObserver* observer_ = nullptr;
};

}  // namespace rr::relay

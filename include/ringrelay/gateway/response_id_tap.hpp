// The id of a /v1/responses answer, read from its body as it streams past (the body is
// forwarded untouched; this only looks). The gateway remembers id -> channel with it
// (response_affinity.hpp).
//
//     ResponseIdTap tap;
//     for each decoded body piece: tap.feed(piece);   // any splits
//     std::string_view id = tap.id();                  // empty: none found
//
// What it finds: the string value of the first object key named "id" in the body.
// In a JSON answer that is the response's top-level "id" (OpenAI sends it first); in a
// stream it is the "response"."id" of the first event, response.created (its "type"
// and "sequence_number" come before and are not named id). Keys are told from values
// by the ':' after them, strings are tracked with their escapes, so an "id" inside a
// string never matches. An id is at most kMaxId bytes of printable ASCII without '"'
// or '\' (OpenAI's: "resp_" + 48 hex digits); a longer or escaped one is not taken.
// Only the first kScanLimit bytes are looked at: the id is in the first few hundred.
//
// Cost: one branch per byte of the first kScanLimit bytes, nothing after; no
// allocation but the id's copy. feed() never throws and never reads past its bytes.
// Threads: one thread at a time. feed() does not keep the view it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rr::gateway {

class ResponseIdTap {
public:
    static constexpr std::size_t kScanLimit = 16 * 1024;
    static constexpr std::size_t kMaxId = 128;

    void feed(std::string_view bytes) noexcept;
    // The id found, or empty (none yet, or none in the first kScanLimit bytes).
    std::string_view id() const noexcept { return state_ == State::done ? std::string_view(id_) : std::string_view(); }

private:
    enum class State : std::uint8_t {
        outside,       // between JSON tokens
        in_string,     // in a string that is not an id value (key_len_, key_is_id_ track it)
        after_key,     // the string "id" ended: whitespace, then ':' makes it a key
        before_value,  // after "id": whitespace, then '"' opens the value
        in_value,      // copying the value into id_
        done,          // found (or gave up): nothing more is looked at
    };
    void step(char c) noexcept;
    void string_byte(char c) noexcept;
    void value_byte(char c) noexcept;

    State state_ = State::outside;
    bool escaped_ = false;    // in_string: the previous byte was an escaping '\'
    bool key_is_id_ = false;  // in_string: the bytes so far are a prefix of "id"
    std::uint8_t key_len_ = 0;
    std::size_t scanned_ = 0;
    std::string id_;
};

}  // namespace rr::gateway

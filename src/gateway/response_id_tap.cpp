// The id of a /v1/responses answer from its body in flight. The contract is in
// include/ringrelay/gateway/response_id_tap.hpp.
#include "ringrelay/gateway/response_id_tap.hpp"

namespace rr::gateway {
namespace {

constexpr std::string_view kIdKey = "id";

bool is_json_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_id_byte(char c) noexcept { return c > ' ' && c < 0x7f && c != '"' && c != '\\'; }

}  // namespace

void ResponseIdTap::feed(std::string_view bytes) noexcept {
    for (const char c : bytes) {
        if (state_ == State::done) return;
        if (scanned_++ == kScanLimit) {
            state_ = State::done;
            id_.clear();
            return;
        }
        step(c);
    }
}

void ResponseIdTap::step(char c) noexcept {
    switch (state_) {
    case State::outside:
        if (c == '"') {
            state_ = State::in_string;
            escaped_ = false;
            key_is_id_ = true;
            key_len_ = 0;
        }
        return;
    case State::in_string:
        return string_byte(c);
    case State::after_key:
        if (is_json_space(c)) return;
        state_ = c == ':' ? State::before_value : State::outside;
        if (c != ':') step(c);  // not a key after all: this byte starts what follows
        return;
    case State::before_value:
        if (is_json_space(c)) return;
        if (c == '"') {
            state_ = State::in_value;
            id_.clear();
            return;
        }
        state_ = State::outside;  // "id": 5, "id": null ...: not a string id
        return step(c);
    case State::in_value:
        return value_byte(c);
    case State::done:
        return;
    }
}

void ResponseIdTap::string_byte(char c) noexcept {
    if (escaped_) {
        escaped_ = false;
        key_is_id_ = false;
    } else if (c == '\\') {
        escaped_ = true;
        key_is_id_ = false;
    } else if (c == '"') {
        state_ = key_is_id_ && key_len_ == kIdKey.size() ? State::after_key : State::outside;
        return;
    } else {
        key_is_id_ = key_is_id_ && key_len_ < kIdKey.size() && c == kIdKey[key_len_];
    }
    if (key_len_ < 255) ++key_len_;
}

void ResponseIdTap::value_byte(char c) noexcept {
    if (c == '"') {
        state_ = id_.empty() ? State::outside : State::done;
        return;
    }
    if (is_id_byte(c) && id_.size() < kMaxId) {
        id_ += c;
        return;
    }
    // Not an id we route on (escaped, too long, control bytes): go on as in any string.
    id_.clear();
    state_ = State::in_string;
    key_is_id_ = false;
    escaped_ = false;
    string_byte(c);
}

}  // namespace rr::gateway

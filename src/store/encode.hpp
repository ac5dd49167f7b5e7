// Private to src/store (and its tests): turning owned values into record bytes and
// record views back into owned values.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include "ringrelay/store/ops.hpp"
#include "ringrelay/store/records.hpp"

namespace rr::store {

// Appends strings after a fixed part and fills the header on finish().
template <class Fixed>
class RecordBuilder {
public:
    explicit RecordBuilder(RecordKind kind) {
        fixed_.header.kind = static_cast<std::uint8_t>(kind);
        fixed_.header.version = kRecordVersion;
        fixed_.header.fixed_size = static_cast<std::uint16_t>(sizeof(Fixed));
        bytes_.resize(sizeof(Fixed));
    }
    Fixed& fixed() noexcept { return fixed_; }
    StrRef add(std::string_view s) {
        StrRef r{static_cast<std::uint32_t>(bytes_.size()), static_cast<std::uint32_t>(s.size())};
        bytes_.append(s);
        return r;
    }
    std::string finish() {
        fixed_.header.total_size = static_cast<std::uint32_t>(bytes_.size());
        std::memcpy(bytes_.data(), &fixed_, sizeof(Fixed));
        return std::move(bytes_);
    }

private:
    Fixed fixed_{};
    std::string bytes_;
};

// Everything a key record holds, owned.
struct KeyState {
    std::string id;
    KeySpec spec;
    Sha256 hash{};
    std::int64_t created_at_ms = 0;
    std::int64_t updated_at_ms = 0;
    bool revoked = false;
    std::int64_t revoked_at_ms = 0;
    std::string revoke_reason;
    bool has_previous = false;
    Sha256 previous_hash{};
    std::int64_t previous_grace_until_ms = 0;
};

std::string encode_key(const KeyState& k);
KeyState state_of(const KeyView& v);
std::string encode_key_alias(std::string_view id, std::int64_t rotated_at_ms, std::int64_t grace_until_ms);

// `url` is parse_base_url(spec.base_url).
std::string encode_channel(std::string_view id, const ChannelSpec& spec, const BaseUrl& url, std::int64_t created_at_ms,
                           std::int64_t updated_at_ms);
std::string encode_block(std::string_view reason, std::int64_t created_at_ms, std::int64_t expires_at_ms);
std::string encode_usage(std::uint64_t requests, std::uint64_t tokens, std::int64_t updated_at_ms);
std::string encode_response_route(std::string_view channel_id, std::string_view key_id, std::int64_t expires_at_ms);

// "a,b,c"
std::string join_list(const std::vector<std::string>& items);
std::string join_model_map(const std::vector<std::pair<std::string, std::string>>& map);

inline std::string_view as_key(const Sha256& h) noexcept {
    return {reinterpret_cast<const char*>(h.data()), h.size()};
}

}  // namespace rr::store

#include "ringrelay/gateway/secret_digests.hpp"

#include <bit>
#include <cstring>
#include <functional>

namespace rr::gateway {
namespace {

// Compares all kMaxSecret bytes whatever matches, so the time does not depend on how
// long a common prefix is. Both buffers are zero-padded past their length.
bool equal_constant_time(const char* a, const char* b) noexcept {
    unsigned char diff = 0;
    for (std::size_t i = 0; i < SecretDigests::kMaxSecret; ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

}  // namespace

SecretDigests::SecretDigests(std::size_t slots)
    : slots_(std::bit_ceil(std::max<std::size_t>(slots, 1))), mask_(slots_.size() - 1) {}

std::size_t SecretDigests::slot_of(std::string_view secret) const noexcept {
    return std::hash<std::string_view>{}(secret) & mask_;
}

const SecretDigests::Digest* SecretDigests::find(std::string_view secret) const noexcept {
    if (secret.empty() || secret.size() > kMaxSecret) {
        ++misses_;
        return nullptr;
    }
    const Slot& s = slots_[slot_of(secret)];
    char padded[kMaxSecret] = {};
    std::memcpy(padded, secret.data(), secret.size());
    if (s.length == secret.size() && equal_constant_time(s.secret, padded)) {
        ++hits_;
        return &s.digest;
    }
    ++misses_;
    return nullptr;
}

void SecretDigests::remember(std::string_view secret, const Digest& digest) noexcept {
    if (secret.empty() || secret.size() > kMaxSecret) return;
    Slot& s = slots_[slot_of(secret)];
    std::memset(s.secret, 0, sizeof s.secret);
    std::memcpy(s.secret, secret.data(), secret.size());
    s.length = static_cast<std::uint8_t>(secret.size());
    s.digest = digest;
}

}  // namespace rr::gateway

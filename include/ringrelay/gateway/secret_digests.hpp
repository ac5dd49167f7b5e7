// A shard's memo of SHA-256(secret) for the API keys it has seen lately.
//
// Why. Keys are stored hashed (REFERENCE.md): every request hashes the secret it presents
// and looks the digest up in LMDB. wolfSSL's portable SHA-256 costs ~3,000 instructions,
// a tenth of all the user-space work of a gateway request; the same few secrets come
// back request after request, so the digest is remembered.
//
// Why this cannot make a stale-cache incident. The memo maps a secret to its digest, a
// pure function: nothing about the key (revoked, expired, rotated, limits) is cached.
// Every request still looks the digest up in the shard's current LMDB snapshot, so a
// revoke is refused on the very next request, as without the memo.
//
// Shape: a direct-mapped table (a slot per hash of the secret, the newest secret wins
// the slot), one per shard, so no locks. A hit compares the whole secret in constant
// time, so the time taken says nothing about how much of another client's secret a
// guess matched. Secrets longer than kMaxSecret are never remembered (ringrelay's own
// are 43 bytes).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rr::gateway {

class SecretDigests {
public:
    using Digest = std::array<std::uint8_t, 32>;
    static constexpr std::size_t kMaxSecret = 64;

    // `slots` is rounded up to a power of two (at least 1). About 100 bytes per slot.
    explicit SecretDigests(std::size_t slots = 1024);

    // The remembered digest of exactly this secret, or nullptr. The pointer is valid
    // until the next remember().
    const Digest* find(std::string_view secret) const noexcept;
    // Remembers secret -> digest (taking its slot from whatever was there). A secret
    // longer than kMaxSecret is ignored.
    void remember(std::string_view secret, const Digest& digest) noexcept;

    std::uint64_t hits() const noexcept { return hits_; }
    std::uint64_t misses() const noexcept { return misses_; }

private:
    struct Slot {
        std::uint8_t length = 0;  // 0: empty
        char secret[kMaxSecret];
        Digest digest;
    };
    std::size_t slot_of(std::string_view secret) const noexcept;

    std::vector<Slot> slots_;
    std::size_t mask_;
    mutable std::uint64_t hits_ = 0;
    mutable std::uint64_t misses_ = 0;
};

}  // namespace rr::gateway

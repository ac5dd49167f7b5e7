// Secrets and ids from wolfSSL's Hash_DRBG; their hashes from nettle's SHA-256, which
// dispatches to the CPU's SHA instructions (SHA-NI) where there are any: ~4x faster than
// wolfSSL's portable SHA-256, and every gateway request hashes the secret it presents.
#include <nettle/sha2.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <unistd.h>

#include "ringrelay/store/ops.hpp"

namespace rr::store {
namespace {

constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// The largest multiple of 62 that fits a byte: bytes at or above it are drawn again, so
// each of the 62 characters is equally likely (248 = 4 * 62).
constexpr unsigned kRejectFrom = 248;

// One DRBG per thread, seeded on first use. A forked child reseeds: a copied DRBG state
// would hand the child the parent's next secrets.
class ThreadRng {
public:
    ~ThreadRng() {
        if (ready_) wc_FreeRng(&rng_);
    }
    bool fill(unsigned char* out, std::size_t n) {
        if (!ready_ || pid_ != getpid()) {
            if (ready_) wc_FreeRng(&rng_);
            ready_ = wc_InitRng(&rng_) == 0;
            pid_ = getpid();
            if (!ready_) return false;
        }
        return wc_RNG_GenerateBlock(&rng_, out, static_cast<word32>(n)) == 0;
    }

private:
    WC_RNG rng_{};
    bool ready_ = false;
    pid_t pid_ = 0;
};

Status append_base62(std::size_t count, std::string& out) {
    thread_local ThreadRng rng;
    unsigned char buf[64];
    while (count > 0) {
        if (!rng.fill(buf, sizeof buf)) {
            return Status::error(Errc::io, "the random number generator failed: check that /dev/urandom is readable");
        }
        for (unsigned char b : buf) {
            if (count == 0) break;
            if (b >= kRejectFrom) continue;
            out += kBase62[b % 62];
            --count;
        }
    }
    return {};
}

bool is_base62(char c) noexcept {
    return kBase62.find(c) != std::string_view::npos;
}

}  // namespace

Status generate_secret(std::string& out) {
    out.assign(kSecretPrefix);
    return append_base62(kSecretRandomChars, out);
}

Status generate_id(std::string_view prefix, std::size_t count, std::string& out) {
    out.assign(prefix);
    return append_base62(count, out);
}

Sha256 hash_secret(std::string_view secret) noexcept {
    Sha256 digest{};
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, secret.size(), reinterpret_cast<const std::uint8_t*>(secret.data()));
    sha256_digest(&ctx, digest.size(), digest.data());
    return digest;
}

bool looks_like_secret(std::string_view text) noexcept {
    if (text.size() != kSecretPrefix.size() + kSecretRandomChars || !text.starts_with(kSecretPrefix)) return false;
    for (char c : text.substr(kSecretPrefix.size())) {
        if (!is_base62(c)) return false;
    }
    return true;
}

}  // namespace rr::store

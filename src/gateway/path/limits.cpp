// Stage 3, check_limits: RPM, TPM and quota, before the request takes any slot.
#include "path.hpp"
#include "ringrelay/common.hpp"

namespace rr::gateway {
namespace {

Outcome rate_limited(std::uint32_t retry_after_s) {
    Outcome o = Outcome::rejected(429, "rate_limited", "rate limit exceeded", false);
    o.retry_after_s = retry_after_s;
    return o;
}

}  // namespace

Outcome check_limits(GatewayRequest& req) {
    RateLimits& limits = req.sg.shared().limits;
    const KeyInfo& key = req.key;
    const std::int64_t now = now_unix_ms();
    if (key.quota != 0) {
        const auto q = RateLimits::check_quota(key.tokens_used, limits.pending_tokens(key.key_hash), key.quota);
        if (!q.allowed) return Outcome::rejected(429, "quota_exceeded", "quota exceeded", false);
    }
    if (key.tpm != 0) {
        const auto t = limits.check_tokens(key.key_hash, key.tpm, now);
        if (!t.allowed) return rate_limited(t.retry_after_s);
    }
    if (key.rpm != 0 && !req.exempt_from_key_limits()) {  // last: it counts the request when it lets it through
        const auto r = limits.check_request(key.key_hash, key.rpm, now);
        if (!r.allowed) return rate_limited(r.retry_after_s);
    }
    return Outcome::proceed();
}

}  // namespace rr::gateway

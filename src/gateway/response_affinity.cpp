// The routes of new responses on their way to the store. The contract is in
// include/ringrelay/gateway/response_affinity.hpp.
#include "ringrelay/gateway/response_affinity.hpp"

#include <limits>

namespace rr::gateway {

void ResponseAffinity::remember(std::string_view id, std::string_view channel_id, std::string_view key_id,
                                std::int64_t now_ms) {
    if (!enabled() || id.empty()) return;
    const std::uint64_t max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const std::int64_t expires = ttl_ms_ >= max - static_cast<std::uint64_t>(now_ms)
                                     ? std::numeric_limits<std::int64_t>::max()
                                     : now_ms + static_cast<std::int64_t>(ttl_ms_);
    ResponseRouteEntry e{std::string(id), std::string(channel_id), std::string(key_id), expires};
    std::lock_guard lk(mu_);
    if (unflushed_.size() >= kMaxUnflushed && !unflushed_.contains(e.id)) {
        ++dropped_;
        return;
    }
    unflushed_.insert_or_assign(e.id, std::move(e));
}

std::optional<ResponseRouteEntry> ResponseAffinity::find_unflushed(std::string_view id) const {
    std::lock_guard lk(mu_);
    if (unflushed_.empty()) return std::nullopt;
    const auto it = unflushed_.find(std::string(id));
    if (it == unflushed_.end()) return std::nullopt;
    return it->second;
}

std::vector<ResponseRouteEntry> ResponseAffinity::take_unflushed() const {
    std::vector<ResponseRouteEntry> out;
    std::lock_guard lk(mu_);
    out.reserve(unflushed_.size());
    for (const auto& [id, e] : unflushed_) out.push_back(e);
    return out;
}

void ResponseAffinity::forget_flushed(const std::vector<ResponseRouteEntry>& written) {
    std::lock_guard lk(mu_);
    for (const ResponseRouteEntry& e : written) unflushed_.erase(e.id);
}

std::uint64_t ResponseAffinity::dropped() const {
    std::lock_guard lk(mu_);
    return dropped_;
}

}  // namespace rr::gateway

#include "ringrelay/gateway/channel_pick.hpp"

#include <limits>

namespace rr::gateway {

int pick_channel(std::span<const Candidate> candidates, std::uint32_t random) noexcept {
    std::int32_t best = std::numeric_limits<std::int32_t>::max();
    bool any = false;
    for (const Candidate& c : candidates) {
        if (c.usable && c.priority < best) best = c.priority;
        any = any || c.usable;
    }
    if (!any) return kNoChannel;
    std::uint64_t total = 0;
    for (const Candidate& c : candidates)
        if (c.usable && c.priority == best) total += c.weight ? c.weight : 1;
    std::uint64_t point = random % total;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const Candidate& c = candidates[i];
        if (!c.usable || c.priority != best) continue;
        const std::uint64_t w = c.weight ? c.weight : 1;
        if (point < w) return static_cast<int>(i);
        point -= w;
    }
    return kNoChannel;  // unreachable: point < total
}

int count_usable(std::span<const Candidate> candidates) noexcept {
    int n = 0;
    for (const Candidate& c : candidates) n += c.usable ? 1 : 0;
    return n;
}

}  // namespace rr::gateway

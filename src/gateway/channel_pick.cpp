#include "ringrelay/gateway/channel_pick.hpp"

#include <cmath>
#include <limits>

namespace rr::gateway {
namespace {

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ull) noexcept {
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return h;
}

// splitmix64's finalizer: FNV's low bits are weak, the draw needs all 64 mixed.
std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

double rendezvous_score(const Candidate& c) noexcept {
    const double u = (static_cast<double>(c.affinity >> 11) + 0.5) * 0x1.0p-53;  // in (0, 1)
    return -static_cast<double>(c.weight ? c.weight : 1) / std::log(u);
}

// The best-scoring candidate of the lowest priority among those eligible(c).
template <typename Eligible>
int best_by_rendezvous(std::span<const Candidate> candidates, Eligible eligible) noexcept {
    std::int32_t best_priority = std::numeric_limits<std::int32_t>::max();
    for (const Candidate& c : candidates)
        if (eligible(c) && c.priority < best_priority) best_priority = c.priority;
    int best = kNoChannel;
    double best_score = 0;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const Candidate& c = candidates[i];
        if (!eligible(c) || c.priority != best_priority) continue;
        const double score = rendezvous_score(c);
        if (best == kNoChannel || score > best_score) {
            best = static_cast<int>(i);
            best_score = score;
        }
    }
    return best;
}

}  // namespace

std::uint64_t session_hash(std::string_view session_id) noexcept {
    const std::uint64_t h = mix(fnv1a(session_id));
    return h ? h : 1;
}

std::uint64_t affinity_of(std::uint64_t session, std::string_view channel_id) noexcept {
    return mix(fnv1a(channel_id, session));
}

int pick_channel_for_session(std::span<const Candidate> candidates) noexcept {
    return best_by_rendezvous(candidates, [](const Candidate& c) { return c.usable; });
}

int home_channel(std::span<const Candidate> candidates) noexcept {
    return best_by_rendezvous(candidates, [](const Candidate& c) { return c.enabled; });
}

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

// Choosing a channel among the candidates for (group, model): lowest priority
// value first, weighted random within that priority, skipping channels that are
// disabled, open-circuit, saturated, or already tried by this request.
#pragma once

#include <cstdint>
#include <span>

namespace rr::gateway {

struct Candidate {
    std::int32_t priority = 0;
    std::uint32_t weight = 1;
    bool usable = true;  // enabled, circuit closed, under max_concurrency, not yet tried
};

inline constexpr int kNoChannel = -1;

// Index of the chosen candidate, or kNoChannel when none is usable. Candidates need
// not be sorted. random is any uniformly distributed 32-bit value.
int pick_channel(std::span<const Candidate> candidates, std::uint32_t random) noexcept;

// How many usable candidates there are (a retry is worth allowing only if > 1).
int count_usable(std::span<const Candidate> candidates) noexcept;

}  // namespace rr::gateway

// Choosing a channel among the candidates for (group, model): lowest priority
// value first, weighted random within that priority, skipping channels that are
// disabled, open-circuit, saturated, or already tried by this request. A request of
// a session picks by weighted rendezvous hashing instead: no state is kept, yet a
// session stays on its channel while that one is usable, moves to the next when it
// is not, comes back when it recovers, and every node of a cluster picks alike.
//
// Pure functions: they read the caller's span during the call and keep nothing; the
// caller (the shard) fills the candidates from the store and the ChannelBoard. Any
// thread, no allocation, no errors: "nothing usable" is kNoChannel.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace rr::gateway {

struct Candidate {
    std::int32_t priority = 0;
    std::uint32_t weight = 1;
    bool usable = true;  // enabled, circuit closed, under max_concurrency, not yet tried
    bool enabled = true;        // session picks: which channels could be the session's home
    std::uint64_t affinity = 0;  // session picks: affinity_of(session, channel id)
};

// A session id's hash (stable across processes and builds: nodes must agree), never 0.
std::uint64_t session_hash(std::string_view session_id) noexcept;
// The session's hash mixed with a channel's id: the channel's rendezvous draw.
std::uint64_t affinity_of(std::uint64_t session, std::string_view channel_id) noexcept;

// Among the usable candidates of the best priority, the one with the highest weighted
// rendezvous score (-weight / ln u, u from its affinity in (0, 1)): a channel wins a
// share of sessions in proportion to its weight. kNoChannel when none is usable.
int pick_channel_for_session(std::span<const Candidate> candidates) noexcept;

// The session's home: the same pick as if every enabled candidate were usable. A pick
// equal to it is a sticky hit (the upstream's prompt cache is warm there).
int home_channel(std::span<const Candidate> candidates) noexcept;

inline constexpr int kNoChannel = -1;

// Index of the chosen candidate, or kNoChannel when none is usable. Candidates need
// not be sorted. random is any uniformly distributed 32-bit value.
int pick_channel(std::span<const Candidate> candidates, std::uint32_t random) noexcept;

// How many usable candidates there are (a retry is worth allowing only if > 1).
int count_usable(std::span<const Candidate> candidates) noexcept;

}  // namespace rr::gateway

// Response affinity: which channel created an OpenAI Responses API response, so that
// GET/DELETE /v1/responses/{id}, .../input_items and .../cancel reach the upstream
// that holds it (docs/OPERATIONS.md, "Response affinity").
//
// The routes live in LMDB (`responses`, store/ops.hpp); a shard never writes there.
// When a shard relays a successful POST /v1/responses it calls remember(); the route
// waits here, in memory, until the server's writer thread (the main thread, once a
// second with the usage) stores it with take_unflushed() + forget_flushed(). A lookup
// asks find_unflushed() first and the store second, in that order: an entry leaves
// this table only after its write committed, so a store snapshot begun after a miss
// here sees it. Hence a GET right after the POST, on any shard, finds its channel.
//
// Bounded: at most kMaxUnflushed routes wait (a store that cannot be written for a
// long time drops the newest and counts them in dropped()).
// Threads: every call takes one mutex for a map operation; shards and the writer.
// Ownership: the table owns copies of the ids it keeps (the views passed in are read
// during the call only); find_unflushed() answers a copy. Owned by GatewayShared.
// Errors: none reported but dropped(); the calls may throw std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rr::gateway {

struct ResponseRouteEntry {
    std::string id;
    std::string channel_id;
    std::string key_id;
    std::int64_t expires_at_ms = 0;
};

class ResponseAffinity {
public:
    static constexpr std::size_t kMaxUnflushed = 65536;

    // ttl_ms 0: off (nothing is remembered; every by-id request is routed normally).
    explicit ResponseAffinity(std::uint64_t ttl_ms) noexcept : ttl_ms_(ttl_ms) {}

    bool enabled() const noexcept { return ttl_ms_ != 0; }
    std::uint64_t ttl_ms() const noexcept { return ttl_ms_; }

    // Shards: the response `id` was created on channel_id for key_id at now_ms.
    void remember(std::string_view id, std::string_view channel_id, std::string_view key_id, std::int64_t now_ms);
    // Shards: the route of `id` if it still waits for the writer.
    std::optional<ResponseRouteEntry> find_unflushed(std::string_view id) const;

    // Writer: copies of the routes waiting (they stay until forget_flushed).
    std::vector<ResponseRouteEntry> take_unflushed() const;
    // Writer: these were committed to the store.
    void forget_flushed(const std::vector<ResponseRouteEntry>& written);

    std::uint64_t dropped() const;

private:
    const std::uint64_t ttl_ms_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, ResponseRouteEntry> unflushed_;  // by id; guarded by mu_
    std::uint64_t dropped_ = 0;                                      // guarded by mu_
};

}  // namespace rr::gateway

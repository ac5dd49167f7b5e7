// The gateway's state: what all shards share (the store, the global token pool, the
// per-key slots, the channel board), and what each shard keeps for itself (its LMDB
// reader, caches of channel targets and board entries, its JSON parser).
//
// Ownership and lifetimes: the server owns one GatewayShared (which owns the store
// Env and the shared tables) for the whole run; it outlives every shard. Each shard
// owns its ShardGateway, made and destroyed on the shard's thread, before the shard
// (its Reader before the Env). The ChannelBoard::State pointers it caches are never
// freed while the board lives (channel_board.hpp). The shared members are
// thread-safe as their own headers say; a ShardGateway is used by its shard only.
//
// Errors: only construction throws, at start-up (TokenPool: std::invalid_argument for
// a queue too large; std::bad_alloc); the request path answers errors to the client.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ringrelay/io/blocking_worker.hpp"
#include "ringrelay/upstream/channel_targets.hpp"
#include "ringrelay/gateway/channel_board.hpp"
#include "ringrelay/gateway/key_slots.hpp"
#include "ringrelay/gateway/rate_limits.hpp"
#include "ringrelay/gateway/response_affinity.hpp"
#include "ringrelay/gateway/token_pool.hpp"
#include "ringrelay/store/env.hpp"
#include "ringrelay/store/reader.hpp"
#include "ringrelay/upstream/pool.hpp"
#include "ringrelay/relay/shard.hpp"

namespace rr::gateway {

// KeySlots and RateLimits are keyed by 64-bit ids: FNV-1a 64 of the store's key id.
// The gateway path takes slots under it and the admin API releases them by it.
inline std::uint64_t key_hash_of(std::string_view key_id) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : key_id) h = (h ^ c) * 1099511628211ull;
    return h;
}

struct GatewayShared {
    GatewayShared(std::unique_ptr<store::Env> e, std::uint32_t tokens_capacity, std::uint32_t max_queue,
                  std::uint64_t response_affinity_ttl_ms = 0)
        : env(std::move(e)), tokens(tokens_capacity, max_queue), responses(response_affinity_ttl_ms) {}
    std::unique_ptr<store::Env> env;
    gateway::TokenPool tokens;
    gateway::KeySlots keys;
    gateway::ChannelBoard channels;
    gateway::RateLimits limits;  // RPM, TPM, and usage not yet flushed to the store
    gateway::ResponseAffinity responses;  // response id -> channel routes not yet flushed to the store
    io::BlockingWorker resolver{"rr-resolver"};  // channel host names are looked up here, never on a shard
};

// What the request path needs of a channel, copied out of its LMDB record.
struct ChannelChoice {
    std::string id;
    std::string base_url;
    std::string credential_header;  // "Authorization: Bearer ...\r\n" or "x-api-key: ...\r\n"
    std::string upstream_model;     // after the channel's model map
    std::int64_t updated_at_ms = 0;
    std::uint32_t timeout_ms = 0;
    std::uint32_t first_byte_timeout_ms = 0;  // 0 = the server's; store::kFirstByteTimeoutOff = off
    std::uint8_t pass_headers = 0;  // store::PassHeader bits: client billing headers it gets
    bool inject_usage = false;      // an openai channel whose streams are made to carry usage
    gateway::ChannelBoard::State* state = nullptr;
};

// One shard's gateway: the main listener's RequestHandler in gateway mode. Made on
// the shard's own thread (it opens the shard's LMDB reader), destroyed before the shard.
class ShardGateway final : public relay::RequestHandler {
public:
    ShardGateway(GatewayShared& shared, io::Loop& loop, upstream::UpstreamPool& pool)
        : shared_(shared), reader_(*shared.env), targets_(loop, pool, shared.resolver) {}

    // The gateway's request path (src/gateway/path/): route, block list, key, limits,
    // body, key slot, token, channel, relay, record. Returns whether the connection
    // may carry another request.
    io::Task<bool> serve(relay::ClientSession& cs, relay::RequestContext& rc) override;

    GatewayShared& shared() noexcept { return shared_; }
    store::Reader& reader() noexcept { return reader_; }
    simdjson::ondemand::parser& json() noexcept { return json_; }

    gateway::ChannelBoard::State& channel_state(std::string_view id);
    // The pool targets of channels' base URLs, host names looked up off the shard.
    upstream::ChannelTargets& targets() noexcept { return targets_; }
    std::uint32_t random() noexcept;

private:
    GatewayShared& shared_;
    store::Reader reader_;
    simdjson::ondemand::parser json_;
    std::unordered_map<std::string, gateway::ChannelBoard::State*> states_;
    upstream::ChannelTargets targets_;
    std::uint64_t rng_ = 0x853c49e6748fea9bull;
};

}  // namespace rr::gateway

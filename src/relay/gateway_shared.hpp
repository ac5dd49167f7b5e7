// The gateway's state: what all shards share (the store, the global token pool, the
// per-key slots, the channel board), and what each shard keeps for itself (its LMDB
// reader, caches of channel targets and board entries, its JSON parser).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "blocking_worker.hpp"
#include "channel_targets.hpp"
#include "ringrelay/gateway/channel_board.hpp"
#include "ringrelay/gateway/key_slots.hpp"
#include "ringrelay/gateway/rate_limits.hpp"
#include "ringrelay/gateway/token_pool.hpp"
#include "ringrelay/store/env.hpp"
#include "ringrelay/store/reader.hpp"
#include "ringrelay/upstream/pool.hpp"

namespace rr::relay {

// KeySlots and RateLimits are keyed by 64-bit ids: FNV-1a 64 of the store's key id.
// The gateway path takes slots under it and the admin API releases them by it.
inline std::uint64_t slot_id_of(std::string_view key_id) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : key_id) h = (h ^ c) * 1099511628211ull;
    return h;
}

struct GatewayShared {
    GatewayShared(std::unique_ptr<store::Env> e, std::uint32_t tokens_capacity, std::uint32_t max_queue)
        : env(std::move(e)), tokens(tokens_capacity, max_queue) {}
    std::unique_ptr<store::Env> env;
    gateway::TokenPool tokens;
    gateway::KeySlots keys;
    gateway::ChannelBoard channels;
    gateway::RateLimits limits;  // RPM, TPM, and usage not yet flushed to the store
    BlockingWorker resolver{"rr-resolver"};  // channel host names are looked up here, never on a shard
};

// What the request path needs of a channel, copied out of its LMDB record.
struct ChannelChoice {
    std::string id;
    std::string base_url;
    std::string credential_header;  // "Authorization: Bearer ...\r\n" or "x-api-key: ...\r\n"
    std::string upstream_model;     // after the channel's model map
    std::int64_t updated_at_ms = 0;
    std::uint32_t timeout_ms = 0;
    std::uint8_t pass_headers = 0;  // store::PassHeader bits: client billing headers it gets
    gateway::ChannelBoard::State* state = nullptr;
};

class ShardGateway {
public:
    ShardGateway(GatewayShared& shared, io::Loop& loop, upstream::UpstreamPool& pool)
        : shared_(shared), reader_(*shared.env), targets_(loop, pool, shared.resolver) {}

    GatewayShared& shared() noexcept { return shared_; }
    store::Reader& reader() noexcept { return reader_; }
    simdjson::ondemand::parser& json() noexcept { return json_; }

    gateway::ChannelBoard::State& channel_state(std::string_view id);
    // The pool targets of channels' base URLs, host names looked up off the shard.
    ChannelTargets& targets() noexcept { return targets_; }
    std::uint32_t random() noexcept;

private:
    GatewayShared& shared_;
    store::Reader reader_;
    simdjson::ondemand::parser json_;
    std::unordered_map<std::string, gateway::ChannelBoard::State*> states_;
    ChannelTargets targets_;
    std::uint64_t rng_ = 0x853c49e6748fea9bull;
};

}  // namespace rr::relay

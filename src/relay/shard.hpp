// Shard: one core's share of the server. Owns its event loop, listener, upstream
// pool and counters; a client connection lives and dies on one shard, and nothing
// here is touched by another thread except through Loop::post().
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringrelay/io/listener.hpp"
#include "ringrelay/io/loop.hpp"
#include "ringrelay/relay/settings.hpp"
#include "ringrelay/upstream/pool.hpp"

namespace rr::relay {

struct ShardCounters {
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_active = 0;
    std::uint64_t requests = 0;
    std::uint64_t responses[6] = {};  // by status class: [1]=1xx ... [5]=5xx
    std::uint64_t client_aborts = 0;  // client went away before the response ended
    std::uint64_t upstream_retries = 0;
};

// Request ids: 32 hex digits, random per shard (seeded from getrandom), never
// repeating within a process: the high half is random, the low half a counter.
class RequestIdGenerator {
public:
    explicit RequestIdGenerator(unsigned shard);
    // Writes 32 hex characters into out.
    void next(char out[32]) noexcept;

private:
    std::uint64_t seed_;
    std::uint64_t counter_ = 0;
};

// The client's address, compact (an idle connection keeps it for its lifetime).
struct PeerAddress {
    std::uint8_t family = 0;  // AF_INET or AF_INET6
    std::uint8_t bytes[16] = {};
    // Appends the textual address to out.
    void append_to(std::string& out) const;
    static PeerAddress of_socket(int fd) noexcept;
};

// Reusable output buffers, so building a head does not allocate per request.
class BufferPool {
public:
    std::string take() {
        if (free_.empty()) {
            std::string s;
            s.reserve(2048);
            return s;
        }
        std::string s = std::move(free_.back());
        free_.pop_back();
        return s;
    }
    void give(std::string&& s) {
        if (s.capacity() > 64 * 1024 || free_.size() >= 256) return;  // let outsized ones go
        s.clear();
        free_.push_back(std::move(s));
    }

private:
    std::vector<std::string> free_;
};

class Shard {
public:
    Shard(unsigned index, const ServeSettings& settings, const io::LoopOptions& loop_options);
    // Starts accepting on listen_fd (the shard's own SO_REUSEPORT socket) and runs
    // the loop until stop().
    void run(int listen_fd);
    // Thread-safe.
    void stop() noexcept { loop_.stop(); }
    // Relay mode: the one upstream every request goes to.
    void add_relay_target(const upstream::UpstreamTarget& t);

    unsigned index() const noexcept { return index_; }
    const ServeSettings& settings() const noexcept { return settings_; }
    io::Loop& loop() noexcept { return loop_; }
    upstream::UpstreamPool& pool() noexcept { return pool_; }
    ShardCounters& counters() noexcept { return counters_; }
    RequestIdGenerator& request_ids() noexcept { return ids_; }
    BufferPool& buffers() noexcept { return buffers_; }
    std::uint32_t relay_target() const noexcept { return relay_target_; }
    bool draining() const noexcept { return draining_; }

private:
    static void on_accept(void* ctx, int fd);

    unsigned index_;
    const ServeSettings& settings_;
    io::Loop loop_;
    upstream::UpstreamPool pool_;
    ShardCounters counters_;
    RequestIdGenerator ids_;
    BufferPool buffers_;
    std::uint32_t relay_target_ = 0;
    bool draining_ = false;
    std::unique_ptr<io::Listener> listener_;
};

}  // namespace rr::relay

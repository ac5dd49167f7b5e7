// UpstreamPool: one shard's keep-alive connections to its upstreams. Lock-free by
// being shard-local: only the owning shard's thread uses it.
//
// An idle connection keeps its multishot recv armed, so an upstream that closes an
// idle connection is noticed at once (the CQE with res 0) and the connection
// leaves the pool; nothing is sent on a connection known to be dead. A connection
// that still dies on reuse (the close raced our request) is retried by the relay.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/upstream/target.hpp"

namespace rr::io {
class TlsClientContext;
}

namespace rr::upstream {

class UpstreamPool;

struct UpstreamConn {
    io::Socket* socket = nullptr;
    std::uint32_t target = 0;
    std::uint32_t requests = 0;  // served on this connection (reuse accounting)
    bool reused = false;         // the current request got it from the idle list
    UpstreamPool* pool = nullptr;
    struct IdleTimer : io::Timer {
        explicit IdleTimer(UpstreamConn* c) noexcept;
        UpstreamConn* conn;
    } idle_timer{this};
};

struct PoolStats {
    std::uint64_t connects = 0;
    std::uint64_t connect_failures = 0;
    std::uint64_t reuses = 0;
    std::uint64_t closed_idle = 0;  // closed by the upstream or the idle timeout while idle
};

struct Acquired {
    UpstreamConn* conn = nullptr;  // null on failure
    int error = 0;                 // -errno of the failed connect (-ETIMEDOUT on deadline)
    // https: "TLS handshake with upstream failed: <why>" when the handshake failed
    // (error is then -EPROTO, -ECONNRESET or -ETIMEDOUT); empty otherwise.
    std::string reason;
};

class UpstreamPool {
public:
    explicit UpstreamPool(io::Loop& loop, std::uint32_t max_idle_per_target = 128,
                          std::uint64_t idle_timeout_ms = 60'000) noexcept
        : loop_(loop), max_idle_(max_idle_per_target), idle_timeout_ms_(idle_timeout_ms) {}
    ~UpstreamPool();

    // The client context for https targets (shared read-only by all shards; it must
    // outlive the pool). Without one, connecting to an https target fails.
    void set_tls_client(const io::TlsClientContext* ctx) noexcept { tls_client_ = ctx; }

    // Registers a target (deduplicated by address, Host and base path) and returns its id.
    std::uint32_t add_target(const UpstreamTarget& t);
    const UpstreamTarget& target(std::uint32_t id) const noexcept { return targets_[id].target; }

    // An idle live connection to target, or null. Cheap: no coroutine.
    UpstreamConn* take_idle(std::uint32_t target) noexcept;
    // A new connection to target; deadline in monotonic ms. An https target is
    // handshaken (SNI and certificate name = the target's host) before it is
    // handed out, within the same deadline.
    io::Task<Acquired> connect(std::uint32_t target, std::uint64_t deadline_ms);
    // Hands a connection back after a request. reusable=false (or a full idle list)
    // closes it.
    void release(UpstreamConn* c, bool reusable) noexcept;
    // Closes a connection without pooling it.
    void discard(UpstreamConn* c) noexcept;

    // Closes every idle connection (shutdown).
    void close_idle() noexcept;

    const PoolStats& stats() const noexcept { return stats_; }
    std::size_t idle_count() const noexcept;

private:
    struct TargetSlot {
        UpstreamTarget target;
        std::string key;
        std::vector<UpstreamConn*> idle;  // LIFO: the warmest connection first
    };
    static void on_idle_peer_gone(void* ctx);
    friend struct UpstreamConn;
    static void on_idle_timeout_trampoline(io::Timer* t);
    void remove_idle(UpstreamConn* c) noexcept;
    io::Task<int> start_tls(io::Socket& socket, const UpstreamTarget& t, std::uint64_t deadline_ms,
                            std::string& reason);

    io::Loop& loop_;
    const io::TlsClientContext* tls_client_ = nullptr;
    std::uint32_t max_idle_;
    std::uint64_t idle_timeout_ms_;
    std::vector<TargetSlot> targets_;
    PoolStats stats_;
};

}  // namespace rr::upstream

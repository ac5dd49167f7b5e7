// UpstreamPool: one shard's keep-alive connections to its upstreams. Lock-free by
// being shard-local: only the owning shard's thread uses it.
//
// An idle connection keeps its multishot recv armed, so an upstream that closes an
// idle connection is noticed at once (the CQE with res 0) and the connection
// leaves the pool; nothing is sent on a connection known to be dead. A connection
// that still dies on reuse (the close raced our request) is retried by the relay.
//
// Targets. Each target lives in its own heap slot that never moves (a coroutine that
// waits in connect() keeps using it), found by a hash map keyed by (address, Host,
// base path). A target is kept alive by its TargetRefs (a channel's entry, the relay
// mode's one upstream, a request between routing and forwarding) and by its
// connections (open, idle or connecting); when the last of both goes, the target is
// pruned, so a target that no channel uses any more lingers only as long as its idle
// connections (the idle timeout) and then frees its slot.
//
// Ownership: the pool owns its idle connections and its targets; a ConnLease owns a
// connection in use and gives it back (or closes it) when it dies. The loop, the
// observer and the TLS client context are borrowed and outlive the pool; every lease
// and TargetRef must be gone before the pool is destroyed.
//
// Errors: connect() yields Acquired with -errno (and a reason for a TLS handshake
// that failed); nothing throws but allocation (add_target, connect).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/upstream/target.hpp"

namespace rr::io {
class TlsClientContext;
}

namespace rr::upstream {

class UpstreamPool;

// One upstream connection, owned by the pool (idle) or by a ConnLease (in use).
// While idle it listens for its socket's peer-gone news: an upstream that closes an
// idle connection takes it out of the pool at once.
struct UpstreamConn final : io::PeerGoneListener {
    void on_peer_gone() noexcept override;

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

// The holder's claim on one upstream connection: its destructor discards the
// connection (closes it, never pools it) unless give_back() handed it to the pool,
// so no early return or destroyed coroutine frame can leak or forget one.
class ConnLease {
public:
    ConnLease() noexcept = default;
    explicit ConnLease(UpstreamConn* c) noexcept : c_(c) {}
    ConnLease(ConnLease&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
    ConnLease& operator=(ConnLease&& o) noexcept;
    ConnLease(const ConnLease&) = delete;
    ConnLease& operator=(const ConnLease&) = delete;
    ~ConnLease() { discard(); }

    explicit operator bool() const noexcept { return c_ != nullptr; }
    UpstreamConn* get() const noexcept { return c_; }
    UpstreamConn* operator->() const noexcept { return c_; }
    UpstreamConn& operator*() const noexcept { return *c_; }
    // Back to the pool after a request (reusable=false closes it).
    void give_back(bool reusable) noexcept;
    // Closes the connection now.
    void discard() noexcept;

private:
    UpstreamConn* c_ = nullptr;
};

// A counted reference to a pool target: while one exists, the target's id stays
// valid and names the same target. Shard-local (not thread-safe), like the pool; it
// must not outlive its pool.
class TargetRef {
public:
    TargetRef() noexcept = default;
    TargetRef(const TargetRef& o) noexcept;
    TargetRef(TargetRef&& o) noexcept : pool_(o.pool_), id_(o.id_) { o.pool_ = nullptr; }
    TargetRef& operator=(const TargetRef& o) noexcept;
    TargetRef& operator=(TargetRef&& o) noexcept;
    ~TargetRef() { reset(); }

    void reset() noexcept;
    bool valid() const noexcept { return pool_ != nullptr; }
    std::uint32_t id() const noexcept { return id_; }
    bool operator==(const TargetRef& o) const noexcept { return pool_ == o.pool_ && id_ == o.id_; }

private:
    friend class UpstreamPool;
    TargetRef(UpstreamPool* pool, std::uint32_t id) noexcept;  // takes a new reference
    UpstreamPool* pool_ = nullptr;
    std::uint32_t id_ = 0;
};

struct PoolStats {
    std::uint64_t connects = 0;
    std::uint64_t connect_failures = 0;
    std::uint64_t reuses = 0;
    std::uint64_t requests = 0;     // connections handed out (take_idle or connect): one request each
    std::uint64_t closed_idle = 0;  // closed by the upstream or the idle timeout while idle
    std::uint64_t targets_pruned = 0;
};

// Told of every new upstream connection and every request the pool hands a
// connection out for (the shard's metrics listen).
class PoolObserver {
public:
    virtual void on_upstream_connection() noexcept = 0;
    virtual void on_upstream_request() noexcept = 0;

protected:
    ~PoolObserver() = default;
};

struct Acquired {
    ConnLease conn;                // empty on failure
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
    // Every TargetRef must be gone by now; idle connections are closed here.
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // The client context for https targets (shared read-only by all shards; it must
    // outlive the pool). Without one, connecting to an https target fails.
    void set_tls_client(const io::TlsClientContext* ctx) noexcept { tls_client_ = ctx; }
    void set_observer(PoolObserver* o) noexcept { observer_ = o; }

    // Registers a target (deduplicated by address, Host and base path) and returns a
    // reference to it. O(1): a hash lookup.
    TargetRef add_target(const UpstreamTarget& t);
    // The functions taking a target id need a live TargetRef to it (held by the caller).
    const UpstreamTarget& target(std::uint32_t id) const noexcept { return slots_[id]->target; }

    // An idle live connection to target, or an empty lease. Cheap: no coroutine.
    ConnLease take_idle(std::uint32_t target) noexcept;
    // A new connection to target; deadline in monotonic ms. An https target is
    // handshaken (SNI and certificate name = the target's host) before it is
    // handed out, within the same deadline. The target stays alive while this waits.
    io::Task<Acquired> connect(std::uint32_t target, std::uint64_t deadline_ms);

    // Closes every idle connection (shutdown).
    void close_idle() noexcept;

    const PoolStats& stats() const noexcept { return stats_; }
    std::size_t idle_count() const noexcept;
    std::size_t target_count() const noexcept { return by_key_.size(); }

private:
    struct TargetSlot {
        UpstreamTarget target;
        std::string key;
        std::vector<UpstreamConn*> idle;  // LIFO: the warmest connection first
        std::uint32_t refs = 0;           // TargetRefs
        std::uint32_t conns = 0;          // connections open, idle or being made
    };
    friend class TargetRef;
    friend class ConnLease;
    // Hands a connection back after a request. reusable=false (or a full idle list)
    // closes it.
    void release(UpstreamConn* c, bool reusable) noexcept;
    // Closes a connection without pooling it.
    void discard(UpstreamConn* c) noexcept;
    friend struct UpstreamConn;
    static void on_idle_timeout_trampoline(io::Timer* t);
    void ref(std::uint32_t id) noexcept { ++slots_[id]->refs; }
    void unref(std::uint32_t id) noexcept;
    void prune_if_unused(std::uint32_t id) noexcept;
    void remove_idle(UpstreamConn* c) noexcept;
    io::Task<int> start_tls(io::Socket& socket, const UpstreamTarget& t, std::uint64_t deadline_ms,
                            std::string& reason);

    io::Loop& loop_;
    const io::TlsClientContext* tls_client_ = nullptr;
    PoolObserver* observer_ = nullptr;
    std::uint32_t max_idle_;
    std::uint64_t idle_timeout_ms_;
    // By id; a slot is heap-allocated so growing this vector never moves a target.
    std::vector<std::unique_ptr<TargetSlot>> slots_;
    std::vector<std::uint32_t> free_ids_;  // ids of pruned slots, reused first
    std::unordered_map<std::string, std::uint32_t> by_key_;
    PoolStats stats_;
};

}  // namespace rr::upstream

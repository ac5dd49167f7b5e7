// Shard: one core's share of the server. Owns its event loop, listener, upstream
// pool and counters; a client connection lives and dies on one shard, and nothing
// here is touched by another thread except through Loop::post().
//
// Ownership: the shard owns its loop, pool, listeners, counters and buffers. The
// settings, the TLS contexts, the ShardObs outputs, the request handlers and the
// services are borrowed: the server owns them, sets them before run() and keeps them
// alive until run() has returned and the shard is destroyed. The shard is created,
// run and destroyed on its own thread; begin_drain() and stop() may be called from
// any thread.
//
// Errors: the constructor throws std::system_error when the loop cannot be made
// (io_uring setup, the buffer ring, the eventfd), and run() when the loop's wait
// fails (fatal); requests never throw.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringrelay/io/listener.hpp"
#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/peer_address.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/relay/settings.hpp"
#include "ringrelay/relay/shard_obs.hpp"
#include "ringrelay/upstream/pool.hpp"

namespace rr::io {
class TlsServerContext;
class TlsClientContext;
}  // namespace rr::io

namespace rr::relay {

struct ClientSession;
struct RequestContext;

// What serves a listener's requests past what the session answers itself (/healthz,
// malformed heads, shutting down): the gateway's request path on the main listener,
// the admin API on the admin one. Set before run(); outlives the shard's loop.
class RequestHandler {
public:
    // Serves the request whose head rc holds (parsed, not consumed). Returns whether
    // the connection may carry another request.
    virtual io::Task<bool> serve(ClientSession& cs, RequestContext& rc) = 0;

protected:
    ~RequestHandler() = default;
};

// Work a shard runs beside its sessions (the gateway's health checks on shard 0):
// started by run(), stopped when the drain begins, and waited for until idle()
// before the loop ends. It calls Shard::service_idle() once it becomes idle.
class ShardService {
public:
    virtual void start() = 0;
    virtual void stop() = 0;
    virtual bool idle() const noexcept = 0;

protected:
    ~ShardService() = default;
};

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

class Shard final : private upstream::PoolObserver {
public:
    Shard(unsigned index, const ServeSettings& settings, const io::LoopOptions& loop_options);
    ~Shard();
    // Starts accepting on listen_fd (the shard's own SO_REUSEPORT socket) and runs
    // the loop until stop().
    void run(int listen_fd);
    // Thread-safe: stop accepting, let requests in flight finish (new ones on open
    // connections get 503 shutting_down), cut what is left after --drain-timeout,
    // and return from run() once every socket is closed.
    void begin_drain() noexcept { loop_.post(&drain_post_); }
    // Thread-safe: return from run() at once (used when start-up fails).
    void stop() noexcept { loop_.stop(); }

    // O(1) each: the live sessions are an intrusive list.
    void register_session(ClientSession& s) noexcept;
    void unregister_session(ClientSession& s) noexcept;
    // A session's request begins / ends (counted, so a drain never scans sessions).
    void request_started() noexcept { ++requests_in_flight_; }
    void request_ended() noexcept;
    // TLS contexts made at start-up (either may be null): server = the listener
    // serves TLS; client = https upstreams can be reached. Shared read-only by all
    // shards; they outlive the shard. Call before run().
    void use_tls(const io::TlsServerContext* server, const io::TlsClientContext* client) noexcept;
    const io::TlsServerContext* server_tls() const noexcept { return server_tls_; }
    // Relay mode: the one upstream every request goes to.
    void add_relay_target(const upstream::UpstreamTarget& t);
    // Gateway mode: the handler of the main listener's requests (null: relay mode,
    // every request goes to the relay target).
    void set_handler(RequestHandler* h) noexcept { handler_ = h; }
    RequestHandler* handler() noexcept { return handler_; }
    // A service run beside the sessions (see ShardService); the shard does not own it.
    void add_service(ShardService& s) { services_.push_back(&s); }
    // A service calls this when it has become idle: a drain waiting for it goes on.
    void service_idle() noexcept {
        if (draining_) check_drained();
    }
    // Metrics block and access-log producer of this shard (either may be null).
    void attach_obs(ShardObs o) noexcept {
        obs_ = o;
        pool_.set_observer(this);
    }
    ShardObs& obs() noexcept { return obs_; }
    // Shard 0 also serves the admin listener, in TLS when tls is set (--admin-tls-cert).
    void attach_admin(RequestHandler& admin, const io::TlsServerContext* tls, int admin_listen_fd) noexcept {
        admin_ = &admin;
        admin_tls_ = tls;
        admin_fd_ = admin_listen_fd;
    }
    RequestHandler* admin() noexcept { return admin_; }
    const io::TlsServerContext* admin_tls() const noexcept { return admin_tls_; }

    unsigned index() const noexcept { return index_; }
    const ServeSettings& settings() const noexcept { return settings_; }
    io::Loop& loop() noexcept { return loop_; }
    upstream::UpstreamPool& pool() noexcept { return pool_; }
    ShardCounters& counters() noexcept { return counters_; }
    RequestIdGenerator& request_ids() noexcept { return ids_; }
    BufferPool& buffers() noexcept { return buffers_; }
    // A string for a synchronous step (never held across a suspension).
    std::string& scratch() noexcept { return scratch_; }
    std::uint32_t relay_target() const noexcept { return relay_target_.id(); }
    bool draining() const noexcept { return draining_; }

private:
    // The pool's counts of new upstream connections and of requests sent upstream
    // (their ratio is the keep-alive reuse in /metrics).
    void on_upstream_connection() noexcept override;
    void on_upstream_request() noexcept override;
    static void on_accept(void* ctx, int fd);
    static void on_admin_accept(void* ctx, int fd);
    void start_drain();
    void check_drained();
    void cut_all_sessions() noexcept;

    struct ShardTimer : io::Timer {
        ShardTimer(io::Timer::Fire f, Shard* s) noexcept : io::Timer(f), shard(s) {}
        Shard* shard;
    };

    unsigned index_;
    const ServeSettings& settings_;
    io::Loop loop_;
    upstream::UpstreamPool pool_;
    ShardCounters counters_;
    RequestIdGenerator ids_;
    BufferPool buffers_;
    std::string scratch_;
    upstream::TargetRef relay_target_;
    const io::TlsServerContext* server_tls_ = nullptr;
    bool draining_ = false;
    std::unique_ptr<io::Listener> listener_;
    std::unique_ptr<io::Listener> admin_listener_;
    RequestHandler* handler_ = nullptr;
    RequestHandler* admin_ = nullptr;
    const io::TlsServerContext* admin_tls_ = nullptr;
    int admin_fd_ = -1;
    ShardObs obs_;
    std::vector<ShardService*> services_;

    ClientSession* sessions_ = nullptr;
    std::size_t requests_in_flight_ = 0;  // sessions between request_started and request_ended
    bool idle_cut_ = false;               // draining: the idle sessions have been cut (once)
    struct DrainPost : io::Posted {
        explicit DrainPost(Shard* s) noexcept : shard(s) {
            run = [](io::Posted* p) { static_cast<DrainPost*>(p)->shard->start_drain(); };
        }
        Shard* shard;
    } drain_post_{this};
    ShardTimer drain_deadline_{[](io::Timer* t) { static_cast<ShardTimer*>(t)->shard->cut_all_sessions(); }, this};
};

}  // namespace rr::relay

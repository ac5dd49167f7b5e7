// HealthChecker: the active health checks of the channels that ask for one
// (`--health-path`). One checker runs on shard 0 for the whole server: the
// ChannelBoard it feeds is shared by every shard, so one view of each upstream is
// enough and the upstream sees one probe per interval, not one per shard.
//
// Every second it reads the channel records (its own LMDB Reader, no disk wait: the
// map is read in place) and starts a probe for each enabled channel with a health
// path whose interval has passed and whose previous probe is done. A probe is
// `GET <base path><health path>` with the channel's credential, sent over a new
// upstream connection from the shard's UpstreamPool (so https channels are
// handshaken and verified like requests are), `Connection: close`, bounded by the
// channel's health timeout from connect to the response head. A 2xx answer passes;
// anything else (another status, a refused or failed connect, a timeout, a bad
// head) fails. ChannelBoard::record_check turns the results into up/down.
//
// Never blocking the shard: probes are coroutines; host names are looked up on the
// resolver thread through the shard's ChannelTargets, as for requests.
//
// Drain: stop() starts no more probes, wakes the tick loop and aborts probes that
// wait on a socket (a probe still connecting ends within its timeout); the shard
// waits for idle() before its loop stops, so no frame outlives the loop.
//
// Ownership: the checker borrows its shard and the shard's ShardGateway (both outlive
// it) and owns its Reader and its probes' frames; the shard holds it as a service,
// not as an owner. Shard 0's thread only. Errors are results, not exceptions: a
// failed probe is a failed check for ChannelBoard::record_check; a store read that
// fails skips that tick.
#pragma once

#include <coroutine>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/relay/shard.hpp"
#include "ringrelay/store/reader.hpp"

namespace rr::gateway {

class ShardGateway;

class HealthChecker final : public relay::ShardService {
public:
    static constexpr std::uint64_t kTickMs = 1000;

    // Probes through shard's pool; tells shard (service_idle) when it becomes idle after stop().
    HealthChecker(relay::Shard& shard, ShardGateway& gateway);
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    void start() override;
    void stop() noexcept override;
    // Stopped, and neither the tick loop nor a probe is running.
    bool idle() const noexcept override { return stopping_ && !ticking_ && probes_in_flight_ == 0; }

    std::uint64_t probes_started() const noexcept { return probes_started_; }

private:
    // What a probe needs of a channel, copied out of its record.
    struct Probe {
        std::string id;
        std::int64_t updated_at_ms = 0;
        std::string base_url;
        std::string health_path;
        std::string credential_headers;  // complete header lines
        std::uint32_t timeout_ms = 0;
        std::uint32_t interval_ms = 0;
    };
    struct Result {
        bool ok = false;
        bool aborted = false;  // cut by stop(): says nothing about the channel
        int status = 0;        // the upstream's HTTP status, 0 without an answer
        std::string error;     // why it failed, for the log
    };
    struct Entry {
        std::uint64_t next_due_ms = 0;
        bool in_flight = false;
        bool seen = false;             // listed with checks on in the latest scan
        io::Socket* socket = nullptr;  // the probe's connection while it waits on it
    };

    // A sleep that stop() can end early.
    class Nap : io::Timer {
    public:
        explicit Nap(io::Loop& loop) noexcept : io::Timer(&Nap::expire), loop_(loop) {}
        struct Awaiter {
            Nap& nap;
            bool await_ready() const noexcept { return nap.woken_ || nap.deadline_ <= nap.loop_.now_ms(); }
            void await_suspend(std::coroutine_handle<> h) {
                nap.handle_ = h;
                nap.loop_.timers().arm(nap, nap.deadline_);
            }
            void await_resume() noexcept { nap.handle_ = {}; }
        };
        Awaiter until(std::uint64_t deadline_ms) noexcept {
            deadline_ = deadline_ms;
            return Awaiter{*this};
        }
        void wake() noexcept;

    private:
        static void expire(io::Timer* t);
        io::Loop& loop_;
        std::uint64_t deadline_ = 0;
        std::coroutine_handle<> handle_;
        bool woken_ = false;
    };

    io::Task<void> run();
    void scan();
    void forget_unseen();
    io::Task<void> check(Probe p);
    io::Task<Result> probe(const Probe& p, Entry& e);
    void record(const Probe& p, const Result& r);

    relay::Shard& shard_;
    ShardGateway& gateway_;
    store::Reader reader_;
    Nap nap_;
    std::unordered_map<std::string, Entry> entries_;  // by channel id; node-stable
    bool stopping_ = false;
    bool ticking_ = false;
    unsigned probes_in_flight_ = 0;
    std::uint64_t probes_started_ = 0;
};

}  // namespace rr::gateway

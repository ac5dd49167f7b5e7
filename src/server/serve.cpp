// serve_main: settings, start-up checks, one thread per shard, signal handling.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "ringrelay/common.hpp"
#include "ringrelay/io/listener.hpp"
#include "ringrelay/io/tls.hpp"
#include "ringrelay/obs/log.hpp"
#include "ringrelay/server/settings.hpp"
#include "ringrelay/serve.hpp"
#include "ringrelay/admin/admin.hpp"
#include "ringrelay/io/blocking_worker.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/gateway/health_checker.hpp"
#include "ringrelay/obs/access_log.hpp"
#include "ringrelay/obs/metrics.hpp"
#include "ringrelay/store/env.hpp"
#include "ringrelay/store/ops.hpp"
#include "ringrelay/upstream/target.hpp"
#include "ringrelay/relay/shard.hpp"
#include "shard_thread.hpp"

namespace rr {
namespace {

constexpr std::int64_t kResponseRouteSweepMs = 3'600'000;  // hourly

using relay::ServeSettings;

int fail(int code, const std::string& message) {
    std::fprintf(stderr, "ringrelay: %s\n", message.c_str());
    return code;
}

// Tens of thousands of connections are normal for a gateway: take the hard limit.
void raise_open_files_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 65536)
        obs::log(obs::Level::warn, "open files limit is low; raise it (ulimit -n / LimitNOFILE) for many connections",
                 {{"limit", static_cast<double>(rl.rlim_cur)}});
}

void pin_to_core(unsigned core) {
    const unsigned cpus = std::thread::hardware_concurrency();
    if (cpus == 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core % cpus, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Start-up handshake between main and the shard threads.
struct StartGate {
    std::mutex mu;
    std::condition_variable cv;
    unsigned ready = 0;
    std::string error;
};

using server::ShardThread;

// What a shard is given at start: one upstream (relay mode) or the gateway's shared state.
struct ShardRole {
    const upstream::UpstreamTarget* relay_target = nullptr;
    gateway::GatewayShared* gateway = nullptr;
    const io::TlsServerContext* server_tls = nullptr;  // serve TLS on the listener
    const io::TlsClientContext* client_tls = nullptr;  // reach https upstreams
    obs::Metrics* metrics = nullptr;
    obs::AccessLog* access_log = nullptr;
    admin::AdminContext* admin = nullptr;  // served by shard 0
    int admin_fd = -1;
};

// The TLS contexts: built once here, before any shard starts, and only read by the
// shards afterwards (see io/tls.hpp). SIGHUP reloads the listener's certificates
// (reload_tls): new handshakes take the new ones, open connections keep theirs.
struct TlsContexts {
    std::unique_ptr<io::TlsServerContext> server;
    std::unique_ptr<io::TlsClientContext> client;
};

void log_tls_listener(const char* what, const ServeSettings& st, const io::TlsServerContext& server) {
    std::string names;
    for (const std::string& n : server.server_names()) names += (names.empty() ? "" : ",") + n;
    obs::log(obs::Level::info, what,
             {{"cert", st.tls_cert}, {"certificates", st.tls_certs.size()}, {"names", names},
              {"generation", server.generation()}});
}

// SIGHUP: reads the listener's certificates and keys again. A bad file keeps the
// certificates in use (and says which file); the server goes on either way.
void reload_tls(const ServeSettings& st, io::TlsServerContext* server) {
    if (server == nullptr) {
        obs::log(obs::Level::info, "SIGHUP: no TLS listener, nothing to reload");
        return;
    }
    if (const std::string error = server->reload(); !error.empty()) {
        obs::log(obs::Level::error, "TLS reload failed, keeping the certificates in use", {{"reason", error}});
        return;
    }
    log_tls_listener("TLS certificates reloaded", st, *server);
}

// Builds what the settings ask for; on failure returns false with the reason.
bool make_tls_contexts(const ServeSettings& st, bool need_client, TlsContexts& out, std::string& error) {
    try {
        if (!st.tls_certs.empty()) {
            std::vector<io::TlsCertificateFiles> files;
            for (std::size_t i = 0; i < st.tls_certs.size(); ++i) files.push_back({st.tls_certs[i], st.tls_keys[i]});
            out.server = std::make_unique<io::TlsServerContext>(std::move(files));
        }
        if (need_client) {
            io::TlsClientOptions options;
            options.ca_file = st.upstream_ca;
            out.client = std::make_unique<io::TlsClientContext>(options);
        }
    } catch (const std::exception& e) {
        error = e.what();
        return false;
    }
    if (out.server) log_tls_listener("TLS listener ready", st, *out.server);
    if (out.client) {
        const bool system = out.client->system_cas_loaded();
        obs::log(obs::Level::info, "TLS client ready",
                 {{"system_ca_bundle", system ? io::TlsClientContext::kSystemBundle : "not found"},
                  {"upstream_ca", st.upstream_ca}});
        if (!system && st.upstream_ca.empty())
            obs::log(obs::Level::warn, "no CA certificates to trust: every https upstream will fail verification; "
                                       "install ca-certificates or pass --upstream-ca");
    }
    return true;
}

// Makes the shard, then serves until drained. The shard is made, run and destroyed
// here, on its own thread; main reaches it only through me.with_shard().
void shard_life(unsigned index, const ServeSettings& st, const ShardRole& role, int listen_fd, StartGate& gate,
                ShardThread& me) {
    std::unique_ptr<relay::Shard> shard;
    // Declared after the shard, so destroyed before it: they use its loop and pool.
    std::unique_ptr<gateway::ShardGateway> shard_gateway;
    std::unique_ptr<gateway::HealthChecker> health_checker;
    struct DetachFirst {  // declared after `shard`: main loses it before it is destroyed
        ShardThread& me;
        ~DetachFirst() { me.detach(); }
    } detach_first{me};
    try {
        shard = std::make_unique<relay::Shard>(index, st, io::LoopOptions{});
        shard->use_tls(role.server_tls, role.client_tls);
        if (role.relay_target) shard->add_relay_target(*role.relay_target);
        if (role.gateway) {  // opens this shard's LMDB reader: on its own thread
            shard_gateway = std::make_unique<gateway::ShardGateway>(*role.gateway, shard->loop(), shard->pool());
            shard->set_handler(shard_gateway.get());
            if (index == 0) {  // one checker serves every shard: the board is shared
                health_checker = std::make_unique<gateway::HealthChecker>(*shard, *shard_gateway);
                shard->add_service(*health_checker);
            }
        }
        shard->attach_obs({role.metrics ? &role.metrics->shard(index) : nullptr,
                           role.access_log ? &role.access_log->producer(index) : nullptr});
        if (index == 0 && role.admin) shard->attach_admin(*role.admin, role.admin->tls, role.admin_fd);
    } catch (const std::exception& e) {
        std::lock_guard lk(gate.mu);
        gate.error = std::string("shard ") + std::to_string(index) + ": " + e.what();
        ++gate.ready;
        gate.cv.notify_all();
        return;
    }
    if (index == 0)
        obs::log(obs::Level::info, "io_uring ready", {{"setup", shard->loop().setup_description()}});
    me.attach(shard.get());
    {
        std::lock_guard lk(gate.mu);
        ++gate.ready;
        gate.cv.notify_all();
    }
    shard->run(listen_fd);
}

void run_shard(unsigned index, const ServeSettings& st, ShardRole role, int listen_fd, StartGate& gate,
               ShardThread& me) {
    name_this_thread("rr-shard-" + std::to_string(index));
    pin_to_core(index);
    me.run_guarded(index, [&] { shard_life(index, st, role, listen_fd, gate, me); });
}

bool any_shard_failed(const std::vector<std::unique_ptr<ShardThread>>& threads) {
    for (const auto& t : threads)
        if (t->failed()) return true;
    return false;
}

// After the first SIGTERM/SIGINT: shards drain on their own; a second signal ends
// the process at once.
void wait_for_drain(const sigset_t& signals, std::vector<std::unique_ptr<ShardThread>>& threads) {
    for (;;) {
        bool all_done = true;
        for (auto& t : threads) all_done = all_done && t->finished();
        if (all_done) return;
        timespec tick{0, 50 * 1000 * 1000};
        const int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            obs::log(obs::Level::warn, "second signal: exiting without waiting for the drain");
            std::_Exit(1);
        }
    }
}

// Token usage counted by the shards goes to LMDB from here (the main thread has
// nothing else to do): a shard never waits for a disk write. A failed write keeps
// the counts for the next round.
void flush_usage(gateway::GatewayShared* gateway) {
    if (gateway == nullptr) return;
    std::vector<gateway::PendingUsage> pending = gateway->limits.take_pending();
    if (pending.empty()) return;
    std::vector<store::UsageDelta> deltas;
    deltas.reserve(pending.size());
    for (const gateway::PendingUsage& p : pending) deltas.push_back({p.key_id, p.requests, p.tokens});
    const std::int64_t now = now_unix_ms();
    const store::Status s = store::add_usage(*gateway->env, deltas, now);
    if (!s.ok()) {
        gateway->limits.restore_pending(pending, now);
        obs::log(obs::Level::warn, "usage flush failed; will retry", {{"error", s.message}});
    }
    gateway->limits.purge_idle(now);
}

// Routes of new /v1/responses responses go to LMDB from here too (response_affinity.hpp);
// they leave the in-memory table only once committed. Expired routes are swept at
// start and then hourly (a lookup ignores an expired one meanwhile).
void flush_response_routes(gateway::GatewayShared* gateway, std::int64_t& next_sweep_ms) {
    if (gateway == nullptr) return;
    const std::int64_t now = now_unix_ms();
    std::vector<gateway::ResponseRouteEntry> pending = gateway->responses.take_unflushed();
    if (!pending.empty()) {
        std::vector<store::ResponseRoute> routes;
        routes.reserve(pending.size());
        for (const auto& e : pending) routes.push_back({e.id, e.channel_id, e.key_id, e.expires_at_ms});
        const store::Status s = store::put_response_routes(*gateway->env, routes, now);
        if (s.ok()) gateway->responses.forget_flushed(pending);
        else obs::log(obs::Level::warn, "response route flush failed; will retry", {{"error", s.message}});
    }
    // Routes dropped because the table was full (the store refused writes for long).
    static std::uint64_t dropped_logged = 0;
    if (const std::uint64_t dropped = gateway->responses.dropped(); dropped != dropped_logged) {
        obs::log(obs::Level::warn, "response routes dropped: the store is not taking writes",
                 {{"dropped_total", dropped}});
        dropped_logged = dropped;
    }
    if (now < next_sweep_ms) return;
    next_sweep_ms = now + kResponseRouteSweepMs;
    std::size_t pruned = 0;
    const store::Status s = store::prune_response_routes(*gateway->env, now, &pruned);
    if (!s.ok()) obs::log(obs::Level::warn, "response route sweep failed", {{"error", s.message}});
    else if (pruned != 0) obs::log(obs::Level::info, "expired response routes swept", {{"count", pruned}});
}

// SIGUSR1 (logrotate): both the access log and the server's own log lines move to
// a freshly opened --log-file.
void reopen_logs(const ServeSettings& st, obs::Level level, int& log_fd, obs::AccessLog& access_log) {
    std::string error;
    if (!access_log.reopen(error)) obs::log(obs::Level::error, "cannot reopen the access log", {{"error", error}});
    if (st.log_file.empty()) return;
    const int fd = open(st.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return;
    obs::configure_log(level, fd);
    if (log_fd > 2) close(log_fd);
    log_fd = fd;
    obs::log(obs::Level::info, "log file reopened");
}

unsigned shard_count(const ServeSettings& st) {
    if (st.shards != 0) return st.shards;
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}

}  // namespace

int serve_main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(server::serve_usage(), stdout);
            return 0;
        }
    }
    ServeSettings st;
    std::string error;
    bool usage_error = false;
    if (!server::resolve_settings(argc, argv, st, error, usage_error)) return fail(usage_error ? 2 : 1, error);

    obs::Level level;
    if (!obs::parse_level(st.log_level, level)) return fail(2, "serve: --log-level must be debug, info, warn or error");
    int log_fd = 2;
    if (!st.log_file.empty()) {
        log_fd = open(st.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (log_fd < 0) return fail(1, "cannot open log file " + st.log_file + ": " + std::strerror(errno));
    }
    obs::configure_log(level, log_fd);

    // The admin listener's address first: a refusal is the only line printed.
    io::SocketAddress admin_addr;
    if (!io::parse_socket_address(st.admin_listen, admin_addr, true))
        return fail(2, "serve: --admin-listen: '" + st.admin_listen + "' is not HOST:PORT");
    const admin::AdminExposure exposure = admin::admin_exposure(st, admin_addr, error);
    if (exposure == admin::AdminExposure::refused) return fail(2, error);
    if (exposure == admin::AdminExposure::insecure)
        obs::log(obs::Level::warn,
                 "admin listener off loopback without TLS (--admin-insecure): the admin token and revealed "
                 "credentials cross the network in clear text",
                 {{"admin_listen", st.admin_listen}});
    std::unique_ptr<io::TlsServerContext> admin_tls;  // outlives the shards (declared before them)
    if (!st.admin_tls_cert.empty()) {
        try {
            admin_tls = std::make_unique<io::TlsServerContext>(st.admin_tls_cert, st.admin_tls_key);
        } catch (const std::exception& e) {
            return fail(1, std::string("admin listener: ") + e.what());
        }
        obs::log(obs::Level::info, "admin TLS ready", {{"cert", st.admin_tls_cert}});
    }

    upstream::UpstreamTarget target;
    std::unique_ptr<gateway::GatewayShared> gateway;
    ShardRole role;
    if (st.mode == relay::Mode::relay) {
        if (!upstream::parse_target(st.upstream, target, error)) return fail(2, "serve: --upstream: " + error);
        role.relay_target = &target;
    } else {
        std::unique_ptr<store::Env> env;
        const store::Status s = store::Env::open(st.data_dir, env);
        if (!s.ok()) return fail(1, "cannot open data directory " + st.data_dir + ": " + s.message);
        gateway = std::make_unique<gateway::GatewayShared>(std::move(env), st.upstream_max_concurrent,
                                                         st.upstream_max_queue, st.response_affinity_ttl_ms);
        role.gateway = gateway.get();
    }
    // Gateway channels may name https base URLs at any time, so the gateway always
    // has a client context; relay mode only for an https upstream (or a CA to check).
    TlsContexts tls;
    const bool need_client = st.mode == relay::Mode::gateway || target.tls || !st.upstream_ca.empty();
    if (!make_tls_contexts(st, need_client, tls, error)) return fail(1, error);
    role.server_tls = tls.server.get();
    role.client_tls = tls.client.get();

    io::SocketAddress listen_addr;
    if (!io::parse_socket_address(st.listen, listen_addr, true))
        return fail(2, "serve: --listen: '" + st.listen + "' is not HOST:PORT");

    raise_open_files_limit();
    // Signals are taken by sigwait() in this thread only. main() blocked them before
    // any thread existed (the resolver and every later thread inherit the mask);
    // blocking again here only covers a caller that is not main().
    const sigset_t signals = serve_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const unsigned n = shard_count(st);

    // Metrics and the access log: per-shard blocks and rings, summed or written by
    // other threads, so a shard never waits for either.
    obs::Metrics metrics(n, RINGRELAY_VERSION);
    obs::AccessLog access_log(n, obs::AccessLogOptions{.path = st.log_file, .level = level});
    if (!access_log.start(error)) return fail(1, "cannot start the access log: " + error);
    metrics.set_gauge_source([&gateway, &access_log](obs::ScrapeGauges& g) {
        g.access_log_dropped = access_log.dropped();
        if (!gateway) return;
        g.upstream_tokens_in_use = gateway->tokens.in_use();
        g.upstream_queue_depth = gateway->tokens.queue_depth();
        g.upstream_tokens_capacity = gateway->tokens.capacity();
        g.upstream_queue_capacity = gateway->tokens.max_queue();
        g.keys_in_flight = static_cast<double>(gateway->keys.total_in_flight());
        const std::int64_t now = now_unix_ms();
        gateway->channels.for_each([&](const gateway::ChannelBoard::State& c) {
            const bool open = gateway::ChannelBoard::circuit_open(c, now);
            g.channels.push_back({c.id, !open, open});
        });
    });
    role.metrics = &metrics;
    role.access_log = &access_log;

    // The admin listener (shard 0) and its token; its writes run on the worker.
    admin::AdminContext admin;
    io::BlockingWorker worker;
    try {
        admin.token = admin::load_or_create_admin_token(st.data_dir);
    } catch (const std::exception& e) {
        return fail(1, e.what());
    }
    admin.tls = admin_tls.get();
    try {
        role.admin_fd = io::listen_socket(admin_addr, false);
    } catch (const std::system_error& e) {
        return fail(1, std::string(e.what()) + " (is another server on that port?)");
    }
    admin.settings = &st;
    admin.gateway = gateway.get();
    admin.metrics = &metrics;
    admin.worker = &worker;
    role.admin = &admin;

    std::vector<int> listen_fds;
    try {
        for (unsigned i = 0; i < n; ++i) listen_fds.push_back(io::listen_socket(listen_addr, true));
    } catch (const std::system_error& e) {
        return fail(1, std::string(e.what()) + " (is another server on that port?)");
    }

    StartGate gate;
    std::vector<std::unique_ptr<ShardThread>> threads;
    for (unsigned i = 0; i < n; ++i) {
        threads.push_back(std::make_unique<ShardThread>());
        ShardThread& t = *threads.back();
        t.thread = std::thread(run_shard, i, std::cref(st), role, listen_fds[i], std::ref(gate), std::ref(t));
    }
    {
        std::unique_lock lk(gate.mu);
        gate.cv.wait(lk, [&] { return gate.ready == n; });
    }
    int exit_code = 0;
    if (!gate.error.empty()) {
        exit_code = fail(1, gate.error);
    } else {
        const bool relay_mode = st.mode == relay::Mode::relay;
        obs::log(obs::Level::info, "ringrelay serving",
                 {{"listen", listen_addr.to_string()}, {"shards", n}, {"mode", relay_mode ? "relay" : "gateway"},
                  {"upstream", relay_mode ? st.upstream : std::string()}, {"data", st.data_dir}});
        std::int64_t next_route_sweep_ms = 0;  // the first tick sweeps
        for (;;) {
            if (any_shard_failed(threads)) {
                obs::log(obs::Level::error, "a shard failed: draining the others and exiting 1",
                         {{"drain_timeout_ms", st.drain_timeout_ms}});
                exit_code = 1;
                break;
            }
            timespec tick{1, 0};
            const int sig = sigtimedwait(&signals, nullptr, &tick);
            if (sig < 0) {
                flush_usage(gateway.get());
                flush_response_routes(gateway.get(), next_route_sweep_ms);
                continue;
            }
            if (sig == SIGTERM || sig == SIGINT) {
                obs::log(obs::Level::info, "draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                                                        {"drain_timeout_ms", st.drain_timeout_ms}});
                break;
            }
            if (sig == SIGUSR1) reopen_logs(st, level, log_fd, access_log);
            if (sig == SIGHUP) reload_tls(st, tls.server.get());
        }
        for (auto& t : threads) t->with_shard([](relay::Shard& s) { s.begin_drain(); });
        wait_for_drain(signals, threads);
        flush_usage(gateway.get());
        flush_response_routes(gateway.get(), next_route_sweep_ms);
        if (any_shard_failed(threads)) exit_code = 1;
    }
    for (auto& t : threads) t->with_shard([](relay::Shard& s) { s.stop(); });
    for (auto& t : threads) t->thread.join();
    access_log.stop();  // writes every record the shards queued
    obs::log(obs::Level::info, "stopped");
    return exit_code;
}

}  // namespace rr

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

#include "ringrelay/io/listener.hpp"
#include "ringrelay/obs/log.hpp"
#include "ringrelay/relay/settings.hpp"
#include "ringrelay/serve.hpp"
#include "ringrelay/upstream/target.hpp"
#include "shard.hpp"

namespace rr {
namespace {

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

struct ShardThread {
    std::thread thread;
    std::atomic<relay::Shard*> shard{nullptr};
};

void run_shard(unsigned index, const ServeSettings& st, const upstream::UpstreamTarget* relay_target, int listen_fd,
               StartGate& gate, ShardThread& me) {
    pin_to_core(index);
    std::unique_ptr<relay::Shard> shard;
    try {
        shard = std::make_unique<relay::Shard>(index, st, io::LoopOptions{});
        if (relay_target) shard->add_relay_target(*relay_target);
    } catch (const std::exception& e) {
        std::lock_guard lk(gate.mu);
        gate.error = std::string("shard ") + std::to_string(index) + ": " + e.what();
        ++gate.ready;
        gate.cv.notify_all();
        return;
    }
    if (index == 0)
        obs::log(obs::Level::info, "io_uring ready", {{"setup", shard->loop().setup_description()}});
    me.shard.store(shard.get());
    {
        std::lock_guard lk(gate.mu);
        ++gate.ready;
        gate.cv.notify_all();
    }
    shard->run(listen_fd);
    me.shard.store(nullptr);
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
            std::fputs(relay::serve_usage(), stdout);
            return 0;
        }
    }
    ServeSettings st;
    std::string error;
    bool usage_error = false;
    if (!relay::resolve_settings(argc, argv, st, error, usage_error)) return fail(usage_error ? 2 : 1, error);

    obs::Level level;
    if (!obs::parse_level(st.log_level, level)) return fail(2, "serve: --log-level must be debug, info, warn or error");
    int log_fd = 2;
    if (!st.log_file.empty()) {
        log_fd = open(st.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (log_fd < 0) return fail(1, "cannot open log file " + st.log_file + ": " + std::strerror(errno));
    }
    obs::configure_log(level, log_fd);

    if (st.mode == relay::Mode::gateway)
        return fail(2, "serve: gateway mode needs the key store, which this build does not serve yet; "
                       "run with --mode relay --upstream URL");
    if (!st.tls_cert.empty()) return fail(2, "serve: TLS listening is not supported by this build yet");

    upstream::UpstreamTarget target;
    if (!upstream::parse_target(st.upstream, target, error)) return fail(2, "serve: --upstream: " + error);
    if (target.tls) return fail(2, "serve: https upstreams are not supported by this build yet");

    io::SocketAddress listen_addr;
    if (!io::parse_socket_address(st.listen, listen_addr, true))
        return fail(2, "serve: --listen: '" + st.listen + "' is not HOST:PORT");

    raise_open_files_limit();
    // Signals are taken by sigwait() in this thread only; shards inherit the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const unsigned n = shard_count(st);
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
        t.thread = std::thread(run_shard, i, std::cref(st), &target, listen_fds[i], std::ref(gate), std::ref(t));
    }
    {
        std::unique_lock lk(gate.mu);
        gate.cv.wait(lk, [&] { return gate.ready == n; });
    }
    int exit_code = 0;
    if (!gate.error.empty()) {
        exit_code = fail(1, gate.error);
    } else {
        obs::log(obs::Level::info, "ringrelay serving",
                 {{"listen", listen_addr.to_string()}, {"shards", n}, {"mode", "relay"}, {"upstream", st.upstream}});
        for (;;) {
            int sig = 0;
            sigwait(&signals, &sig);
            if (sig == SIGTERM || sig == SIGINT) {
                obs::log(obs::Level::info, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
                break;
            }
        }
    }
    for (auto& t : threads)
        if (relay::Shard* s = t->shard.load()) s->stop();
    for (auto& t : threads) t->thread.join();
    obs::log(obs::Level::info, "stopped");
    return exit_code;
}

}  // namespace rr

#include "shard.hpp"

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "gateway_shared.hpp"
#include "ringrelay/obs/metrics.hpp"
#include "health_checker.hpp"
#include "ringrelay/io/task.hpp"
#include "session.hpp"

namespace rr::relay {

RequestIdGenerator::RequestIdGenerator(unsigned shard) {
    if (getrandom(&seed_, sizeof seed_, 0) != sizeof seed_) seed_ = 0x9e3779b97f4a7c15ull ^ std::uint64_t(getpid());
    seed_ ^= std::uint64_t(shard) << 56;
}

void RequestIdGenerator::next(char out[32]) noexcept {
    static constexpr char hex[] = "0123456789abcdef";
    // splitmix64 of the counter keeps ids unguessable-looking and unique per shard.
    std::uint64_t z = seed_ + 0x9e3779b97f4a7c15ull * ++counter_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const std::uint64_t parts[2] = {seed_, z};
    for (int p = 0; p < 2; ++p)
        for (int i = 0; i < 16; ++i) out[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 15];
}

void PeerAddress::append_to(std::string& out) const {
    if (family == AF_INET) {  // by hand: inet_ntop formats IPv4 with sprintf, per request
        char text[16];
        char* p = text;
        for (int i = 0; i < 4; ++i) {
            unsigned v = bytes[i];
            if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
            if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
            *p++ = static_cast<char>('0' + v % 10);
            if (i < 3) *p++ = '.';
        }
        out.append(text, static_cast<std::size_t>(p - text));
        return;
    }
    char text[INET6_ADDRSTRLEN] = "unknown";
    if (family == AF_INET || family == AF_INET6) inet_ntop(family, bytes, text, sizeof text);
    out.append(text);
}

PeerAddress PeerAddress::of_socket(int fd) noexcept {
    PeerAddress p;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
    if (ss.ss_family == AF_INET) {
        p.family = AF_INET;
        std::memcpy(p.bytes, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        p.family = AF_INET6;
        std::memcpy(p.bytes, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
    }
    return p;
}

Shard::Shard(unsigned index, const ServeSettings& settings, const io::LoopOptions& loop_options)
    : index_(index), settings_(settings), loop_(loop_options), pool_(loop_), ids_(index) {}

Shard::~Shard() = default;

void Shard::use_tls(const io::TlsServerContext* server, const io::TlsClientContext* client) noexcept {
    server_tls_ = server;
    pool_.set_tls_client(client);
}

void Shard::on_upstream_connection() noexcept {
    if (obs_.metrics) obs_.metrics->count_upstream_connection();
}

void Shard::on_upstream_request() noexcept {
    if (obs_.metrics) obs_.metrics->count_upstream_request();
}

void Shard::add_relay_target(const upstream::UpstreamTarget& t) { relay_target_ = pool_.add_target(t); }

void Shard::attach_gateway(GatewayShared& shared) { gateway_ = std::make_unique<ShardGateway>(shared, loop_, pool_); }

void Shard::on_accept(void* ctx, int fd) {
    auto* self = static_cast<Shard*>(ctx);
    run_client_session(*self, fd, /*admin=*/false);  // runs until it first waits
}

void Shard::on_admin_accept(void* ctx, int fd) {
    auto* self = static_cast<Shard*>(ctx);
    run_client_session(*self, fd, /*admin=*/true);
}

void Shard::run(int listen_fd) {
    listener_ = std::make_unique<io::Listener>(loop_, listen_fd, &Shard::on_accept, this);
    listener_->start();
    if (admin_fd_ >= 0) {
        admin_listener_ = std::make_unique<io::Listener>(loop_, admin_fd_, &Shard::on_admin_accept, this);
        admin_listener_->start();
    }
    if (index_ == 0 && gateway_) {  // one checker serves every shard: the board is shared
        health_ = std::make_unique<HealthChecker>(*this, *gateway_, [this] {
            if (draining_) check_drained();
        });
        health_->start();
    }
    loop_.run();
    // Let cancelled receives and the listener's accept deliver their last CQEs.
    loop_.drain_sockets(2000);
}

void Shard::register_session(ClientSession& s) noexcept {
    s.next = sessions_;
    if (sessions_) sessions_->prev = &s;
    sessions_ = &s;
    if (idle_cut_) s.cut_now();  // accepted just before the listener stopped: ends at once
}

void Shard::unregister_session(ClientSession& s) noexcept {
    if (s.prev) s.prev->next = s.next;
    else sessions_ = s.next;
    if (s.next) s.next->prev = s.prev;
    s.prev = s.next = nullptr;
    if (draining_) check_drained();
}

void Shard::request_ended() noexcept {
    --requests_in_flight_;
    if (draining_ && requests_in_flight_ == 0) check_drained();
}

void Shard::start_drain() {
    if (draining_) return;
    draining_ = true;
    if (listener_) listener_->stop();
    if (admin_listener_) admin_listener_->stop();
    if (health_) health_->stop();
    loop_.timers().arm(drain_deadline_, loop_.now_ms() + settings_.drain_timeout_ms);
    check_drained();
}

// Drained once no request is in flight: then idle keep-alive sessions are cut (once:
// each then ends as its coroutine resumes, and its unregister lands here again, O(1)),
// idle upstream connections are closed, and the loop runs until their last CQEs are in.
void Shard::check_drained() {
    if (health_ && !health_->idle()) return;  // it calls back once its probes have ended
    if (requests_in_flight_ != 0) return;
    if (sessions_ != nullptr) {
        if (!idle_cut_) {
            idle_cut_ = true;
            cut_all_sessions();
        }
        return;
    }
    loop_.timers().cancel(drain_deadline_);
    pool_.close_idle();
    loop_.stop();  // run() returns; Shard::run drains the sockets' last CQEs
}

void Shard::cut_all_sessions() noexcept {
    for (ClientSession* s = sessions_; s; s = s->next) s->cut_now();
}

}  // namespace rr::relay

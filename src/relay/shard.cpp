#include "ringrelay/relay/shard.hpp"

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "ringrelay/obs/metrics.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/relay/session.hpp"

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
    for (ShardService* s : services_) s->start();
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
    for (ShardService* s : services_) s->stop();
    loop_.timers().arm(drain_deadline_, loop_.now_ms() + settings_.drain_timeout_ms);
    check_drained();
}

// Drained once no request is in flight: then idle keep-alive sessions are cut (once:
// each then ends as its coroutine resumes, and its unregister lands here again, O(1)),
// idle upstream connections are closed, and the loop runs until their last CQEs are in.
void Shard::check_drained() {
    for (const ShardService* s : services_)
        if (!s->idle()) return;  // it calls service_idle() once it is
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

#include "ringrelay/upstream/pool.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ringrelay/io/tls.hpp"

namespace rr::upstream {

UpstreamConn::IdleTimer::IdleTimer(UpstreamConn* c) noexcept
    : io::Timer(&UpstreamPool::on_idle_timeout_trampoline), conn(c) {}

UpstreamPool::~UpstreamPool() {
    for (TargetSlot& t : targets_) {
        for (UpstreamConn* c : t.idle) {
            loop_.timers().cancel(c->idle_timer);
            c->socket->close_and_destroy();
            delete c;
        }
    }
}

std::uint32_t UpstreamPool::add_target(const UpstreamTarget& t) {
    // Everything the exchange takes from a target is in the key: two channels behind one
    // address with different base paths (Azure-style deployments) are two targets, each
    // with its own idle connections, never one target with the first one's path.
    const std::string key = t.key() + ' ' + t.host_header + ' ' + t.base_path;
    for (std::uint32_t i = 0; i < targets_.size(); ++i)
        if (targets_[i].key == key) return i;
    targets_.push_back({t, key, {}});
    return static_cast<std::uint32_t>(targets_.size() - 1);
}

UpstreamConn* UpstreamPool::take_idle(std::uint32_t target) noexcept {
    auto& idle = targets_[target].idle;
    while (!idle.empty()) {
        UpstreamConn* c = idle.back();
        idle.pop_back();
        loop_.timers().cancel(c->idle_timer);
        c->socket->set_on_peer_gone(nullptr, nullptr);
        if (c->socket->peer_closed() || c->socket->has_data()) {  // dead or confused
            ++stats_.closed_idle;
            discard(c);
            continue;
        }
        c->reused = true;
        ++stats_.reuses;
        return c;
    }
    return nullptr;
}

io::Task<Acquired> UpstreamPool::connect(std::uint32_t target, std::uint64_t deadline_ms) {
    const UpstreamTarget& t = targets_[target].target;
    const int fd = ::socket(t.address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) co_return Acquired{nullptr, -errno, {}};
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = co_await io::connect(loop_, fd, t.address.get(), t.address.length, deadline_ms);
    if (rc < 0) {
        ::close(fd);
        ++stats_.connect_failures;
        co_return Acquired{nullptr, rc, {}};
    }
    auto* socket = new io::Socket(loop_, fd);
    if (t.tls) {
        std::string reason;
        if (const int hs = co_await start_tls(*socket, t, deadline_ms, reason); hs < 0) {
            socket->close_and_destroy();
            ++stats_.connect_failures;
            co_return Acquired{nullptr, hs, std::move(reason)};
        }
    } else {
        socket->start_receiving();
    }
    ++stats_.connects;
    auto* c = new UpstreamConn;
    c->socket = socket;
    c->target = target;
    c->pool = this;
    co_return Acquired{c, 0, {}};
}

io::Task<int> UpstreamPool::start_tls(io::Socket& socket, const UpstreamTarget& t, std::uint64_t deadline_ms,
                                      std::string& reason) {
    static constexpr std::string_view kFailed = "TLS handshake with upstream failed: ";
    std::unique_ptr<io::TlsSession> session;
    // Resumption per target (its address, Host and base path): the next connection
    // offers the session the last one was granted.
    if (tls_client_ != nullptr) session = io::TlsSession::client(*tls_client_, t.host, t.key() + ' ' + t.host_header);
    if (!session) {
        reason = std::string(kFailed) + (tls_client_ ? "out of memory" : "this server has no TLS client context");
        co_return tls_client_ ? -ENOMEM : -EPROTONOSUPPORT;
    }
    socket.attach_tls(std::move(session));
    socket.start_receiving();
    const int rc = co_await io::tls_handshake(socket, deadline_ms);
    if (rc < 0) reason = std::string(kFailed) + std::string(socket.tls()->error_text());
    co_return rc;
}

void UpstreamPool::release(UpstreamConn* c, bool reusable) noexcept {
    auto& idle = targets_[c->target].idle;
    if (!reusable || c->socket->aborted() || c->socket->peer_closed() || c->socket->has_data() ||
        idle.size() >= max_idle_) {
        discard(c);
        return;
    }
    c->reused = false;
    idle.push_back(c);
    c->socket->set_on_peer_gone(&UpstreamPool::on_idle_peer_gone, c);
    loop_.timers().arm(c->idle_timer, loop_.now_ms() + idle_timeout_ms_);
}

void UpstreamPool::discard(UpstreamConn* c) noexcept {
    loop_.timers().cancel(c->idle_timer);
    c->socket->close_and_destroy();
    delete c;
}

void UpstreamPool::remove_idle(UpstreamConn* c) noexcept {
    auto& idle = targets_[c->target].idle;
    idle.erase(std::remove(idle.begin(), idle.end(), c), idle.end());
    ++stats_.closed_idle;
    discard(c);
}

void UpstreamPool::on_idle_peer_gone(void* ctx) {
    auto* c = static_cast<UpstreamConn*>(ctx);
    c->pool->remove_idle(c);
}

void UpstreamPool::on_idle_timeout_trampoline(io::Timer* t) {
    UpstreamConn* c = static_cast<UpstreamConn::IdleTimer*>(t)->conn;
    c->pool->remove_idle(c);
}

void UpstreamPool::close_idle() noexcept {
    for (TargetSlot& t : targets_) {
        for (UpstreamConn* c : t.idle) discard(c);
        t.idle.clear();
    }
}

std::size_t UpstreamPool::idle_count() const noexcept {
    std::size_t n = 0;
    for (const TargetSlot& t : targets_) n += t.idle.size();
    return n;
}

}  // namespace rr::upstream

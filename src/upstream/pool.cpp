#include "ringrelay/upstream/pool.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ringrelay/io/socket_guard.hpp"
#include "ringrelay/io/tls.hpp"

namespace rr::upstream {

TargetRef::TargetRef(UpstreamPool* pool, std::uint32_t id) noexcept : pool_(pool), id_(id) { pool_->ref(id_); }

TargetRef::TargetRef(const TargetRef& o) noexcept : pool_(o.pool_), id_(o.id_) {
    if (pool_) pool_->ref(id_);
}

TargetRef& TargetRef::operator=(const TargetRef& o) noexcept {
    if (o.pool_) o.pool_->ref(o.id_);  // first: o may be the last reference to what this holds
    reset();
    pool_ = o.pool_;
    id_ = o.id_;
    return *this;
}

TargetRef& TargetRef::operator=(TargetRef&& o) noexcept {
    if (this == &o) return *this;
    reset();
    pool_ = o.pool_;
    id_ = o.id_;
    o.pool_ = nullptr;
    return *this;
}

void TargetRef::reset() noexcept {
    if (pool_ == nullptr) return;
    UpstreamPool* pool = pool_;
    pool_ = nullptr;
    pool->unref(id_);
}

ConnLease& ConnLease::operator=(ConnLease&& o) noexcept {
    if (this != &o) {
        discard();
        c_ = o.c_;
        o.c_ = nullptr;
    }
    return *this;
}

void ConnLease::give_back(bool reusable) noexcept {
    if (c_ == nullptr) return;
    UpstreamConn* c = c_;
    c_ = nullptr;
    c->pool->release(c, reusable);
}

void ConnLease::discard() noexcept {
    if (c_ == nullptr) return;
    UpstreamConn* c = c_;
    c_ = nullptr;
    c->pool->discard(c);
}

UpstreamConn::IdleTimer::IdleTimer(UpstreamConn* c) noexcept
    : io::Timer(&UpstreamPool::on_idle_timeout_trampoline), conn(c) {}

UpstreamPool::~UpstreamPool() {
    for (std::unique_ptr<TargetSlot>& t : slots_) {
        if (!t) continue;
        for (UpstreamConn* c : t->idle) {
            loop_.timers().cancel(c->idle_timer);
            c->socket->close_and_destroy();
            delete c;
        }
    }
}

TargetRef UpstreamPool::add_target(const UpstreamTarget& t) {
    // Everything the exchange takes from a target is in the key: two channels behind one
    // address with different base paths (Azure-style deployments) are two targets, each
    // with its own idle connections, never one target with the first one's path.
    std::string key = t.key() + ' ' + t.host_header + ' ' + t.base_path;
    if (const auto it = by_key_.find(key); it != by_key_.end()) return TargetRef(this, it->second);
    std::uint32_t id;
    if (!free_ids_.empty()) {
        id = free_ids_.back();
        free_ids_.pop_back();
    } else {
        id = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    slots_[id] = std::make_unique<TargetSlot>(TargetSlot{t, key, {}, 0, 0});
    by_key_.emplace(std::move(key), id);
    return TargetRef(this, id);
}

void UpstreamPool::unref(std::uint32_t id) noexcept {
    --slots_[id]->refs;
    prune_if_unused(id);
}

void UpstreamPool::prune_if_unused(std::uint32_t id) noexcept {
    TargetSlot& slot = *slots_[id];
    if (slot.refs != 0 || slot.conns != 0) return;
    by_key_.erase(slot.key);
    slots_[id].reset();
    free_ids_.push_back(id);
    ++stats_.targets_pruned;
}

ConnLease UpstreamPool::take_idle(std::uint32_t target) noexcept {
    auto& idle = slots_[target]->idle;
    while (!idle.empty()) {
        UpstreamConn* c = idle.back();
        idle.pop_back();
        loop_.timers().cancel(c->idle_timer);
        c->socket->set_on_peer_gone(nullptr);
        if (c->socket->peer_closed() || c->socket->has_data()) {  // dead or confused
            ++stats_.closed_idle;
            discard(c);  // the caller's TargetRef keeps the slot (and `idle`) alive
            continue;
        }
        c->reused = true;
        ++stats_.reuses;
        ++stats_.requests;
        if (observer_) observer_->on_upstream_request();
        return ConnLease(c);
    }
    return ConnLease();
}

io::Task<Acquired> UpstreamPool::connect(std::uint32_t target, std::uint64_t deadline_ms) {
    // The connection in the making counts as one of the target's: the slot (and `t`,
    // which the suspended connect and handshake read) cannot be pruned meanwhile, and
    // the slot never moves when other targets are added.
    TargetSlot& slot = *slots_[target];
    ++slot.conns;
    struct Unpin {
        UpstreamPool* pool;
        std::uint32_t id;
        bool armed = true;
        ~Unpin() {
            if (!armed) return;
            --pool->slots_[id]->conns;
            pool->prune_if_unused(id);
        }
    } unpin{this, target};
    const UpstreamTarget& t = slot.target;
    const int fd = ::socket(t.address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) co_return Acquired{ConnLease(), -errno, {}};
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = co_await io::connect(loop_, fd, t.address.get(), t.address.length, deadline_ms);
    if (rc < 0) {
        ::close(fd);
        ++stats_.connect_failures;
        co_return Acquired{ConnLease(), rc, {}};
    }
    io::OwnedSocket socket(new io::Socket(loop_, fd));
    if (t.tls) {
        std::string reason;
        if (const int hs = co_await start_tls(*socket, t, deadline_ms, reason); hs < 0) {
            ++stats_.connect_failures;
            co_return Acquired{ConnLease(), hs, std::move(reason)};
        }
    } else {
        socket->start_receiving();
    }
    ++stats_.connects;
    ++stats_.requests;
    if (observer_) {
        observer_->on_upstream_connection();
        observer_->on_upstream_request();
    }
    auto* c = new UpstreamConn;
    c->socket = socket.release();
    c->target = target;
    c->pool = this;
    unpin.armed = false;  // the connection keeps counting in slot.conns until discarded
    co_return Acquired{ConnLease(c), 0, {}};
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
    auto& idle = slots_[c->target]->idle;
    if (!reusable || c->socket->aborted() || c->socket->peer_closed() || c->socket->has_data() ||
        idle.size() >= max_idle_) {
        discard(c);
        return;
    }
    c->reused = false;
    idle.push_back(c);
    c->socket->set_on_peer_gone(c);
    loop_.timers().arm(c->idle_timer, loop_.now_ms() + idle_timeout_ms_);
}

void UpstreamPool::discard(UpstreamConn* c) noexcept {
    const std::uint32_t target = c->target;
    loop_.timers().cancel(c->idle_timer);
    c->socket->close_and_destroy();
    delete c;
    --slots_[target]->conns;
    prune_if_unused(target);
}

void UpstreamPool::remove_idle(UpstreamConn* c) noexcept {
    auto& idle = slots_[c->target]->idle;
    idle.erase(std::remove(idle.begin(), idle.end(), c), idle.end());
    ++stats_.closed_idle;
    discard(c);
}

// Only while idle (take_idle clears it): the upstream closed or reset the connection.
void UpstreamConn::on_peer_gone() noexcept { pool->remove_idle(this); }

void UpstreamPool::on_idle_timeout_trampoline(io::Timer* t) {
    UpstreamConn* c = static_cast<UpstreamConn::IdleTimer*>(t)->conn;
    c->pool->remove_idle(c);
}

void UpstreamPool::close_idle() noexcept {
    // By index: discarding a target's last connection may prune (free) its slot.
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i]) continue;
        std::vector<UpstreamConn*> idle = std::move(slots_[i]->idle);
        slots_[i]->idle.clear();
        for (UpstreamConn* c : idle) discard(c);
    }
}

std::size_t UpstreamPool::idle_count() const noexcept {
    std::size_t n = 0;
    for (const std::unique_ptr<TargetSlot>& t : slots_)
        if (t) n += t->idle.size();
    return n;
}

}  // namespace rr::upstream

#include "ringrelay/io/socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "ringrelay/io/tls.hpp"

namespace rr::io {

// ---- ReceivedQueue -------------------------------------------------------------

void Socket::ReceivedQueue::push(Received r) {
    if (count_ == cap_) {
        const std::uint32_t cap = cap_ * 2;
        auto grown = std::make_unique<Received[]>(cap);
        for (std::uint32_t i = 0; i < count_; ++i) grown[i] = at(i);
        heap_ = std::move(grown);
        buf_ = heap_.get();
        cap_ = cap;
        head_ = 0;
    }
    buf_[(head_ + count_) % cap_] = r;
    ++count_;
}

void Socket::ReceivedQueue::pop() noexcept {
    head_ = (head_ + 1) % cap_;
    if (--count_ == 0 && heap_) {  // drained: give the spill memory back
        heap_.reset();
        buf_ = inline_;
        cap_ = kInline;
        head_ = 0;
    }
}

// ---- receiving -----------------------------------------------------------------

Socket::Socket(Loop& loop, int fd) noexcept : Completion(&Socket::on_recv), loop_(loop), fd_(fd) {
    loop_.socket_opened();
}

Socket::~Socket() { delete tls_; }

void Socket::start_receiving() { arm_recv(); }

void Socket::attach_tls(std::unique_ptr<TlsSession> session) noexcept {
    delete tls_;
    tls_ = session.release();
    if (tls_ != nullptr) tls_->bind(this);
}

void Socket::arm_recv() {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_recv_multishot(s, fd_, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BufferRing::kGroupId;
    io_uring_sqe_set_data(s, static_cast<Completion*>(this));
    recv_armed_ = true;
    paused_ = false;
    ++pending_;
}

void Socket::on_recv(Completion* c, int res, std::uint32_t flags) {
    auto* self = static_cast<Socket*>(c);
    if (self->watching_failure_) [[unlikely]] return self->on_failure_watch(res);
    if (flags & IORING_CQE_F_BUFFER) {
        const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        self->loop_.buffers().note_taken();
        if (res > 0 && !self->closing_) {
            if (self->spill_ != nullptr || (self->reader_ == nullptr && self->loop_.buffers().under_pressure()))
                [[unlikely]] {
                self->spill_received(bid, static_cast<std::uint32_t>(res));
            } else {
                self->queue_.push({bid, static_cast<std::uint32_t>(res)});
            }
        } else {
            self->loop_.buffers().recycle(bid);
        }
    }
    const bool more = flags & IORING_CQE_F_MORE;
    if (res == 0) {
        self->eof_ = true;
    } else if (res == -ENOBUFS) {
        ++self->loop_.stats().enobufs;
    } else if (res < 0 && res != -ECANCELED) {
        self->error_ = res;
    }
    // TLS: decrypt what came (or learn of the EOF) before anyone looks at the queue.
    if (self->tls_ != nullptr && !self->closing_) [[unlikely]] self->tls_->on_received();
    if (!more) {
        self->recv_armed_ = false;
        --self->pending_;
        if (self->closing_) return self->maybe_finish();
        if (self->eof_ && self->error_ == 0 && res == 0) {
            self->watch_for_failure();  // half-closed: a later RST must still be heard
        } else if (res == -ENOBUFS && !self->eof_ && self->error_ == 0) {
            if (self->loop_.buffers().in_use() < self->loop_.buffers().count()) {
                // A buffer came back since the kernel looked (spills recycle theirs at
                // once, before this CQE): parking now would wait for a recycle that
                // already happened.
                self->arm_recv();
            } else {
                self->starved_ = true;
                self->loop_.park_starved(self);
            }
        } else if ((!self->paused_ || self->may_resume()) && !self->eof_ && self->error_ == 0) {
            // Multishot ended on its own (e.g. kernel limits), or the pause's cancel
            // landed after the reader had already drained the queue (then no later
            // consume() would re-arm it): re-arm now.
            self->arm_recv();
        }
    } else if (!self->paused_ && self->above_high_water()) {
        self->paused_ = true;
        self->loop_.cancel(self);
    }
    if (self->closing_) return;
    self->report_news();
}

void Socket::report_news() {
    if (reader_ && read_state() != kWouldBlock) {
        wake_reader();  // only for news: a parked (-ENOBUFS) recv is not news
        return;
    }
    if (reader_ || on_peer_gone_ == nullptr) return;
    // Each piece of news once: the EOF, then (maybe) the failure after it.
    const bool eof_news = eof_ && !eof_reported_;
    const bool failure_news = error_ != 0 && !failure_reported_;
    if (!eof_news && !failure_news) return;
    eof_reported_ = eof_reported_ || eof_;
    failure_reported_ = failure_reported_ || error_ != 0;
    on_peer_gone_->on_peer_gone();
}

// After the peer's FIN the multishot recv is over, so nothing would notice the peer
// resetting the connection (a client that closed fully answers our next bytes with
// RST). A one-shot poll for POLLERR/POLLHUP does: it rides on this socket's own
// Completion (the recv is no longer armed), told apart by watching_failure_.
void Socket::watch_for_failure() {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_poll_add(s, fd_, POLLERR | POLLHUP);
    io_uring_sqe_set_data(s, static_cast<Completion*>(this));
    watching_failure_ = true;
    ++pending_;
}

void Socket::on_failure_watch(int res) {
    watching_failure_ = false;
    --pending_;
    if (closing_) return maybe_finish();  // our own shutdown (POLLHUP) or the cancel
    // A cancel meant for the multishot recv (the high-water pause) that landed after
    // the recv had ended at the EOF hits this poll instead: keep watching.
    if (res == -ECANCELED) return watch_for_failure();
    if (res > 0 && (res & (POLLERR | POLLHUP)) != 0 && error_ == 0) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        error_ = err != 0 ? -err : -ECONNRESET;
        report_news();
    }
}

// The spill pauses receiving at one buffer's worth: under pressure a connection
// keeps little more than what its reader works on, wherever it lives.
bool Socket::above_high_water() const noexcept {
    if (queue_.size() >= kHighWater) return true;
    return spill_ != nullptr && spill_bytes() >= loop_.buffers().buffer_size();
}

bool Socket::may_resume() const noexcept { return queue_.size() <= 1 && spill_ == nullptr; }

void Socket::resume_if_drained() {
    if (paused_ && !recv_armed_ && may_resume() && !closing_ && !eof_ && error_ == 0) arm_recv();
}

void Socket::spill_received(std::uint16_t bid, std::uint32_t len) {
    BufferRing& ring = loop_.buffers();
    if (spill_ == nullptr) {
        spill_ = std::make_unique<Spill>();
    } else if (spill_->offset >= spill_->bytes.size() / 2) {
        spill_->bytes.erase(0, spill_->offset);  // keep the copy work linear
        spill_->offset = 0;
    }
    spill_->bytes.append(ring.data(bid), len);
    ring.recycle(bid);
    ++loop_.stats().recv_spills;
    if (loop_.has_starved()) loop_.retry_starved();
}

void Socket::consume_spill(std::size_t n) noexcept {
    spill_->offset += n;
    if (spill_->offset < spill_->bytes.size()) return resume_if_drained();
    spill_.reset();  // read empty: back to receiving into ring buffers
    resume_if_drained();
}

void Socket::retry_after_enobufs() {
    starved_ = false;
    if (!closing_ && !recv_armed_ && !eof_ && error_ == 0) arm_recv();
}

int Socket::read_state() const noexcept {
    if (aborted_) return -ECANCELED;
    if (tls_ != nullptr) [[unlikely]] return tls_->read_state();
    if (queue_.size() != 0) return kData;
    if (spill_ != nullptr) [[unlikely]] return kData;
    if (error_ != 0) return error_;
    if (eof_) return kEof;
    return kWouldBlock;
}

void Socket::ReadableAwaiter::await_suspend(std::coroutine_handle<> h) {
    s_.reader_ = h;
    s_.read_timed_out_ = false;
    if (deadline_ != 0) s_.loop_.timers().arm(s_.read_timer_, deadline_);
}

int Socket::ReadableAwaiter::await_resume() noexcept {
    s_.loop_.timers().cancel(s_.read_timer_);
    const int state = s_.read_state();
    if (state == kWouldBlock) return s_.read_timed_out_ ? -ETIMEDOUT : -ECANCELED;
    return state;
}

void Socket::wake_reader() {
    std::coroutine_handle<> h = reader_;
    reader_ = nullptr;
    h.resume();
}

void Socket::on_read_timeout(Timer* t) {
    Socket* self = static_cast<ReadTimer*>(t)->owner;
    self->read_timed_out_ = true;
    if (self->reader_) self->wake_reader();
}

std::string_view Socket::front() const noexcept {
    if (tls_ != nullptr) [[unlikely]] return tls_->plaintext();
    return raw_front();
}

std::string_view Socket::raw_front() const noexcept {
    if (queue_.size() == 0) {
        if (spill_ != nullptr) [[unlikely]] return std::string_view(spill_->bytes).substr(spill_->offset);
        return {};
    }
    const Received& r = queue_.front();
    return {loop_.buffers().data(r.bid) + front_offset_, r.len - front_offset_};
}

std::size_t Socket::queued_bytes() const noexcept {
    if (tls_ != nullptr) [[unlikely]] return tls_->plaintext_bytes();
    std::size_t n = 0;
    for (std::size_t i = 0; i < queue_.size(); ++i) n += queue_.at(i).len;
    return n - front_offset_ + spill_bytes();
}

bool Socket::tls_has_data() const noexcept { return tls_->plaintext_bytes() != 0; }

void Socket::consume(std::size_t n) noexcept {
    if (tls_ != nullptr) [[unlikely]] return tls_->consume_plaintext(n);
    raw_consume(n);
}

void Socket::raw_consume(std::size_t n) noexcept {
    if (queue_.size() == 0) {
        if (spill_ != nullptr) [[unlikely]] consume_spill(n);
        return;
    }
    front_offset_ += static_cast<std::uint32_t>(n);
    const Received r = queue_.front();
    if (front_offset_ < r.len) return;
    front_offset_ = 0;
    queue_.pop();
    loop_.buffers().recycle(r.bid);
    if (loop_.has_starved()) loop_.retry_starved();
    if (paused_) resume_if_drained();
}

// ---- sending -------------------------------------------------------------------

Socket::SendAwaiter::SendAwaiter(Socket& s, std::string_view data, std::uint64_t deadline) noexcept
    : Completion(&SendAwaiter::complete), Timer(&SendAwaiter::expire), s_(s), p_(data.data()),
      left_(data.size()), deadline_(deadline) {
    if (s.aborted_) {
        result_ = -ECANCELED;
    } else if (s.tls_ != nullptr) [[unlikely]] {
        // Encrypt the first piece now, so await_ready() sees whether anything goes out.
        plain_p_ = p_;
        plain_left_ = left_;
        left_ = 0;
        if (const int rc = tls_next_piece(); rc < 0) result_ = rc;
    }
}

void Socket::SendAwaiter::submit() {
    io_uring_sqe* sqe = s_.loop_.sqe();
    io_uring_prep_send(sqe, s_.fd_, p_, left_, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
    ++s_.pending_;
}

void Socket::SendAwaiter::await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    s_.send_in_flight_ = this;
    submit();
    if (deadline_ != 0) s_.loop_.timers().arm(*this, deadline_);
}

int Socket::SendAwaiter::await_resume() noexcept {
    s_.loop_.timers().cancel(*this);
    return result_;
}

void Socket::SendAwaiter::complete(Completion* c, int res, std::uint32_t) {
    auto* self = static_cast<SendAwaiter*>(c);
    Socket& s = self->s_;
    --s.pending_;
    const bool may_go_on = res > 0 && !s.aborted_ && !self->timed_out_;
    if (may_go_on && static_cast<std::size_t>(res) < self->left_) {
        self->p_ += res;  // short send: the rest goes out before anyone else may send
        self->left_ -= static_cast<std::size_t>(res);
        self->submit();
        return;
    }
    if (s.tls_ != nullptr) [[unlikely]] return self->tls_complete(res, may_go_on);
    s.send_in_flight_ = nullptr;
    if (res >= 0 && static_cast<std::size_t>(res) >= self->left_) {
        self->result_ = 0;  // all sent, even if a timeout or abort raced the last piece
    } else if (self->timed_out_) {
        self->result_ = -ETIMEDOUT;  // bytes are left unsent: the stream has a hole, never "sent"
    } else if (s.aborted_) {
        self->result_ = -ECANCELED;
    } else {
        self->result_ = res < 0 ? res : -EPIPE;
    }
    self->handle_.resume();
}

void Socket::SendAwaiter::expire(Timer* t) {
    auto* self = static_cast<SendAwaiter*>(t);
    self->timed_out_ = true;
    self->s_.loop_.cancel(self);
}

int Socket::SendAwaiter::tls_next_piece() noexcept {
    TlsSession& t = *s_.tls_;
    const int taken = t.encrypt(plain_p_, plain_left_);
    if (taken < 0) return taken;
    plain_p_ += taken;
    plain_left_ -= static_cast<std::size_t>(taken);
    const std::string_view ciphertext = t.take_ciphertext();
    if (ciphertext.empty()) return plain_left_ == 0 ? 0 : -EIO;  // nothing encrypted, nothing to wait for
    p_ = ciphertext.data();
    left_ = ciphertext.size();
    return 1;
}

void Socket::SendAwaiter::tls_complete(int res, bool sent_whole) noexcept {
    TlsSession& t = *s_.tls_;
    t.ciphertext_sent(sent_whole);
    if (sent_whole) {
        result_ = tls_next_piece();
        if (result_ > 0) return submit();
    } else if (timed_out_) {
        result_ = -ETIMEDOUT;
    } else if (s_.aborted_) {
        result_ = -ECANCELED;
    } else {
        result_ = res < 0 ? res : -EPIPE;
    }
    t.release_send_buffers();
    s_.send_in_flight_ = nullptr;
    handle_.resume();
}

bool Socket::send_now(std::string_view data) noexcept {
    if (tls_ != nullptr || send_in_flight_ != nullptr || aborted_ || error_ != 0 || closing_) return false;
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(data.size())) return true;
    if (n > 0) abort();  // a part went out: what follows would be garbled, so nothing may follow
    return false;
}

// ---- ending --------------------------------------------------------------------

void Socket::abort() noexcept {
    if (aborted_) return;
    aborted_ = true;
    if (send_in_flight_) loop_.cancel(send_in_flight_);
    if (reader_) loop_.defer(std::exchange(reader_, nullptr));  // never resume inside the caller
}

void Socket::close_and_destroy() noexcept {
    if (tls_ != nullptr) [[unlikely]] tls_->send_close_notify();
    closing_ = true;
    while (queue_.size() != 0) {
        loop_.buffers().recycle(queue_.front().bid);
        queue_.pop();
    }
    spill_.reset();
    if (starved_) loop_.unpark_starved(this);
    if (recv_armed_ || watching_failure_) loop_.cancel(this);
    // Shut down first so the peer sees FIN even while the cancel is in flight.
    ::shutdown(fd_, SHUT_RDWR);
    maybe_finish();
}

void Socket::maybe_finish() {
    if (!closing_ || pending_ != 0) return;
    ::close(fd_);
    loop_.socket_closed();
    delete this;
}

}  // namespace rr::io

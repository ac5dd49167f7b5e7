// Socket: a connected TCP socket on one shard, with a multishot recv feeding it
// provided buffers, one send at a time, and a clean way to end it.
//
// Receiving: start_receiving() arms a multishot recv; every CQE queues a buffer
// (or records EOF / an error). Readers wait with readable(), look at front() and
// consume() what they used; a buffer goes back to the ring when fully consumed.
// Back-pressure: when kHighWater buffers are queued, the multishot recv is
// cancelled (the peer then fills its socket buffer and slows down); it is re-armed
// once the queue drains. -ENOBUFS (the shard's ring ran dry) parks the socket until
// a buffer is recycled.
//
// Under pressure (more than half the shard's ring in user space), a buffer that
// arrives while no reader waits is copied to the socket's heap spill and recycled
// at once, and so is every later one until the spill is read empty (byte order
// holds: queued buffers, then the spill). A socket under pressure therefore adds
// no ring buffer its reader is not about to take, so slow readers cannot drain the
// ring; the spill pauses receiving at one buffer's worth of bytes and resumes once
// read empty. Off pressure the path is the one above, plus one test.
//
// Lifetime: created with new by its owner (one coroutine), ended with
// close_and_destroy(), which cancels the multishot recv and deletes the object
// only after its last CQE. The owner must not be suspended in send() or
// readable() when it calls close_and_destroy(). A Socket is used only on its
// loop's thread. Views from front() are valid until consume() (see below); data
// given to send() is borrowed until the await completes; the TLS session and the
// spill are owned; the peer-gone listener is borrowed.
//
// Errors: reads and sends yield -errno (never throw); the socket remembers a
// receive error, so every later readable() answers it too.
//
// TLS (optional, see tls.hpp): a socket that carries a TlsSession serves
// plaintext through the same calls. Received ciphertext is decrypted as it
// arrives into the session's plaintext buffer (its provided buffer goes back to
// the ring at once); front()/consume()/has_data()/queued_bytes()/readable() then
// speak of plaintext, and send() encrypts. Decryption pauses while more than
// TlsSession::kPlainHighWater bytes of plaintext wait, leaving ciphertext queued,
// so the high-water back-pressure above still holds. The plain path pays one
// pointer test per call for this.
#pragma once

#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ringrelay/io/loop.hpp"

namespace rr::io {

class TlsSession;

// Told by a Socket of news about its peer while nobody waits in readable() (see
// Socket::set_on_peer_gone). Runs on the socket's loop thread, inside the CQE's
// dispatch: it may end the socket (close_and_destroy) but must not touch it after
// that, and must not resume a coroutine itself (defer to the loop).
class PeerGoneListener {
public:
    virtual void on_peer_gone() noexcept = 0;

protected:
    ~PeerGoneListener() = default;
};

class Socket : Completion {
public:
    static constexpr unsigned kHighWater = 4;

    Socket(Loop& loop, int fd) noexcept;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    int fd() const noexcept { return fd_; }
    Loop& loop() const noexcept { return loop_; }

    void start_receiving();

    // Makes this a TLS socket: call before start_receiving(), then run
    // tls_handshake() before any send()/readable(). The socket owns the session and
    // frees it with itself (on every path, including mid-handshake).
    void attach_tls(std::unique_ptr<TlsSession> session) noexcept;
    // The session, or null for a plain socket. Valid as long as the socket.
    TlsSession* tls() const noexcept { return tls_; }

    // Result of readable(): kData (front() has bytes), kEof (peer closed, nothing
    // queued), or -errno (-ETIMEDOUT, -ECANCELED after abort(), -ECONNRESET ...).
    static constexpr int kData = 1;
    static constexpr int kEof = 0;

    class ReadableAwaiter {
    public:
        ReadableAwaiter(Socket& s, std::uint64_t deadline) noexcept : s_(s), deadline_(deadline) {}
        bool await_ready() const noexcept { return s_.read_state() != kWouldBlock; }
        void await_suspend(std::coroutine_handle<> h);
        int await_resume() noexcept;

    private:
        Socket& s_;
        std::uint64_t deadline_;
    };
    // Waits until bytes are queued, the peer closed, an error, abort() or the deadline
    // (monotonic ms; 0 = none).
    ReadableAwaiter readable(std::uint64_t deadline_ms) noexcept { return {*this, deadline_ms}; }

    bool has_data() const noexcept { return tls_ == nullptr ? raw_has_data() : tls_has_data(); }
    // The unconsumed bytes of the oldest queued buffer (TLS: of the oldest block of
    // decrypted plaintext, at most 16 KiB). Valid until consume() frees it, across
    // awaits too (decrypted bytes never move).
    std::string_view front() const noexcept;
    // Bytes queued in all buffers (TLS: plaintext bytes waiting).
    std::size_t queued_bytes() const noexcept;
    // Drops n <= front().size() bytes; recycles the buffer once empty.
    void consume(std::size_t n) noexcept;
    // Provided buffers this socket holds now (its received queue; the spill holds none).
    std::size_t ring_buffers_held() const noexcept { return queue_.size(); }
    // The peer will send nothing more: TCP EOF, or (TLS) its close_notify. That alone
    // is not a peer that is gone: HTTP/1.1 lets a client half-close after its request
    // and still read the answer.
    bool peer_closed() const noexcept { return eof_; }
    // The connection failed (reset, error): the peer cannot get anything we send.
    bool peer_failed() const noexcept { return error_ != 0; }

    class SendAwaiter : Completion, Timer {
    public:
        SendAwaiter(Socket& s, std::string_view data, std::uint64_t deadline) noexcept;
        bool await_ready() const noexcept { return s_.aborted_ || left_ == 0; }
        void await_suspend(std::coroutine_handle<> h);
        int await_resume() noexcept;

    private:
        static void complete(Completion* c, int res, std::uint32_t flags);
        static void expire(Timer* t);
        void submit();
        // TLS: encrypts the next piece of plaintext and points p_/left_ at the
        // ciphertext to send; 1 = something to send, 0 = all sent, or -errno.
        int tls_next_piece() noexcept;
        void tls_complete(int res, bool sent_whole) noexcept;
        Socket& s_;
        const char* p_;  // bytes going out now (TLS: ciphertext owned by the session)
        std::size_t left_;
        const char* plain_p_ = nullptr;  // TLS: plaintext not yet encrypted
        std::size_t plain_left_ = 0;
        std::uint64_t deadline_;
        std::coroutine_handle<> handle_;
        int result_ = 0;
        bool timed_out_ = false;
        friend class Socket;
    };
    // Sends all of data (resubmitting after short sends). Yields 0, or -errno
    // (-ETIMEDOUT when the deadline passed, -ECANCELED after abort(); TLS: -EPROTO
    // when encryption failed, -EPIPE after an earlier send broke the record stream,
    // -ENOTCONN before the handshake). data must stay valid until the await
    // completes. TLS: an empty data still flushes ciphertext the session holds
    // (handshake messages, alerts).
    SendAwaiter send(std::string_view data, std::uint64_t deadline_ms) noexcept {
        return {*this, data, deadline_ms};
    }

    // Sends a few bytes at once, outside the ring, on a plain socket with no send in
    // flight (so nothing can interleave): for a probe of a peer whose FIN came (a peer
    // that closed fully answers it with RST, which the post-EOF watch hears). Returns
    // whether the kernel took all of them; false on a TLS socket, with a send in
    // flight, after abort() or a failure (nothing sent), or when only a part went out
    // (then the socket is aborted: the byte stream is broken).
    bool send_now(std::string_view data) noexcept;

    // Called when the peer closes (EOF) and again when the socket fails (reset) while
    // nobody waits in readable(), once for each: lets a relay notice a client that
    // went away mid-response, and the pool an idle upstream that closed. Check
    // peer_closed()/peer_failed() in it to tell the two apart. After an EOF a
    // one-shot poll keeps watching for the reset. One listener at a time (null: none);
    // it is borrowed and must stay alive until it is replaced or cleared.
    void set_on_peer_gone(PeerGoneListener* listener) noexcept { on_peer_gone_ = listener; }

    // Makes a pending readable()/send() return -ECANCELED now and every later one at
    // once. Used to cut the upstream side when the client disconnects.
    void abort() noexcept;
    bool aborted() const noexcept { return aborted_; }

    // Ends the socket; see the header comment. After this call the pointer is dead.
    void close_and_destroy() noexcept;

    // Re-arms receiving after the buffer ring had run dry (called by the loop's
    // starved-socket list when a buffer comes back).
    void retry_after_enobufs();

private:
    friend class TlsSession;
    static constexpr int kWouldBlock = -1000000;
    ~Socket();

    struct Received {
        std::uint16_t bid;
        std::uint32_t len;
    };
    // FIFO of received buffers: a few inline (the common case), spilling to the heap
    // only while a fast sender outruns us, so an idle connection costs no allocation.
    class ReceivedQueue {
    public:
        std::size_t size() const noexcept { return count_; }
        const Received& front() const noexcept { return buf_[head_]; }
        const Received& at(std::size_t i) const noexcept { return buf_[(head_ + i) % cap_]; }
        void push(Received r);
        void pop() noexcept;

    private:
        static constexpr std::uint32_t kInline = kHighWater;  // room up to the pause point
        Received inline_[kInline]{};
        Received* buf_ = inline_;
        std::unique_ptr<Received[]> heap_;  // only while a fast sender outruns us
        std::uint32_t cap_ = kInline;
        std::uint32_t head_ = 0;
        std::uint32_t count_ = 0;
    };

    static void on_recv(Completion* c, int res, std::uint32_t flags);
    static void on_read_timeout(Timer* t);
    void arm_recv();
    int read_state() const noexcept;
    void wake_reader();
    void report_news();
    void watch_for_failure();
    void on_failure_watch(int res);
    void maybe_finish();
    // The raw received bytes (ciphertext on a TLS socket).
    std::string_view raw_front() const noexcept;
    void raw_consume(std::size_t n) noexcept;
    bool raw_has_data() const noexcept { return queue_.size() != 0 || spill_ != nullptr; }
    // Out of line so the plain path stays small.
    bool tls_has_data() const noexcept;
    // Under pressure: copies a received buffer to the spill and recycles it.
    void spill_received(std::uint16_t bid, std::uint32_t len);
    void consume_spill(std::size_t n) noexcept;
    std::size_t spill_bytes() const noexcept { return spill_ ? spill_->bytes.size() - spill_->offset : 0; }
    bool above_high_water() const noexcept;
    // Paused receiving may start again: the reader has nearly caught up.
    bool may_resume() const noexcept;
    void resume_if_drained();

    Loop& loop_;
    TlsSession* tls_ = nullptr;  // owned; null for plain sockets (placed to add 8 bytes, not 16)
    int fd_;
    std::uint32_t pending_ = 0;  // CQEs still to come (recv armed, send in flight)
    bool recv_armed_ = false;
    bool paused_ = false;     // cancelled at high water; re-arm when drained
    bool starved_ = false;    // parked after -ENOBUFS
    bool eof_ = false;
    bool aborted_ = false;
    bool closing_ = false;
    bool eof_reported_ = false;
    bool failure_reported_ = false;
    bool watching_failure_ = false;  // the post-EOF poll is armed (on this Completion)
    int error_ = 0;
    std::uint32_t front_offset_ = 0;
    ReceivedQueue queue_;
    // Bytes received after the queue's, copied out of the ring under pressure; null
    // (8 bytes) unless some wait, so idle sockets carry no spill.
    struct Spill {
        std::string bytes;
        std::size_t offset = 0;  // consumed so far
    };
    std::unique_ptr<Spill> spill_;
    std::coroutine_handle<> reader_;
    struct ReadTimer : Timer {
        explicit ReadTimer(Socket* s) noexcept : Timer(&Socket::on_read_timeout), owner(s) {}
        Socket* owner;
    };
    ReadTimer read_timer_{this};
    bool read_timed_out_ = false;
    SendAwaiter* send_in_flight_ = nullptr;
    PeerGoneListener* on_peer_gone_ = nullptr;
};

// Connects fd (non-blocking, already created) to addr; yields 0 or -errno
// (-ETIMEDOUT at the deadline). addr must outlive the await.
inline auto connect(Loop& loop, int fd, const sockaddr* addr, socklen_t len, std::uint64_t deadline_ms) {
    return op(loop, [=](io_uring_sqe* s) { io_uring_prep_connect(s, fd, addr, len); }, deadline_ms);
}

}  // namespace rr::io

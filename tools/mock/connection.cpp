#include "connection.hpp"

#include <cerrno>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.hpp"
#include "introspection.hpp"
#include "responses/openai.hpp"

namespace rr::mock {
namespace {

// Stop producing answers while this much is unsent: a client that pipelines without
// reading, or a fast stream to a slow reader, then waits for EPOLLOUT.
constexpr std::size_t kHighWater = std::size_t{256} * 1024;
// Received bytes kept at most; the rest waits in the kernel (back-pressure).
constexpr std::size_t kMaxBuffered = kMaxBody + std::size_t{128} * 1024;
// Buffers that grew past this are given back once empty: thousands of idle
// keep-alive connections should cost little memory.
constexpr std::size_t kKeepCapacity = std::size_t{16} * 1024;

void release_if_large(std::string& s) {
    if (s.capacity() > kKeepCapacity) std::string().swap(s);
}

}  // namespace

Connection::Connection(int fd, std::uint32_t slot, std::uint32_t generation,
                       LoopContext& ctx) noexcept
    : fd_(fd), slot_(slot), generation_(generation), ctx_(ctx) {}

Connection::~Connection() {
    if (reset_on_close_) {
        // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        const linger abortive{1, 0};
        setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
    }
    ::close(fd_);
}

void Connection::on_events(std::uint32_t epoll_events) noexcept {
    if (epoll_events & (EPOLLERR | EPOLLHUP)) {
        // We never shut down our side, so HUP means the peer reset the connection.
        peer_gone();
        return;
    }
    if (epoll_events & EPOLLRDHUP) peer_eof_ = true;
    if (epoll_events & EPOLLIN) more_to_read_ = true;
    drive();
}

void Connection::on_timer(std::uint64_t token) noexcept {
    if (!timer_armed_ || token != timer_token_) return;
    timer_armed_ = false;
    if (phase_ == Phase::delaying) answer();
    drive();  // a streaming phase emits its next event from here
}

// Makes all the progress possible now: read, answer, send, repeat.
void Connection::drive() noexcept {
    bool progressed = true;
    while (progressed && phase_ != Phase::closed) {
        if (more_to_read_ && !read_socket()) return peer_gone();
        progressed = advance();
        if (!flush()) return peer_gone();
        if (phase_ == Phase::stream_ending && pending_out() == 0) {
            ctx_.stats.add(Counter::streams_completed);
            phase_ = stream_keeps_alive(ex_) ? Phase::reading : Phase::closing;
            progressed = true;
        }
    }
    settle();
}

bool Connection::advance() noexcept {
    if (pending_out() >= kHighWater) return false;
    if (phase_ == Phase::reading) return serve_next_request();
    if (phase_ == Phase::streaming && !timer_armed_) return emit_stream();
    return false;
}

// Decides what the peer's end of input and an empty send queue mean now.
void Connection::settle() noexcept {
    if (phase_ == Phase::closed) return;
    if (peer_eof_) {
        const bool idle = phase_ == Phase::reading || phase_ == Phase::closing;
        // A peer that stopped sending while we owed it a delayed, hung or streamed
        // answer has gone away: that is the cut a proxy's tests look for.
        if (!idle) return peer_gone();
        // Unread bytes may still hold complete requests; otherwise nothing more can come.
        if (!more_to_read_) phase_ = Phase::closing;
    }
    if (phase_ == Phase::closing && pending_out() == 0) phase_ = Phase::closed;
}

// Reads until EAGAIN, EOF or the buffer cap. False when the socket failed.
bool Connection::read_socket() noexcept {
    auto& buf = ctx_.recv_buffer;
    while (in_.size() - in_start_ < kMaxBuffered) {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n > 0) {
            in_.append(buf.data(), static_cast<std::size_t>(n));
            // A short read drained the socket: epoll reports the next arrival as a
            // new edge, so the EAGAIN round trip can be skipped.
            if (static_cast<std::size_t>(n) < buf.size()) break;
            continue;
        }
        if (n == 0) {
            peer_eof_ = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
    }
    more_to_read_ = in_.size() - in_start_ >= kMaxBuffered;
    return true;
}

// Sends what is queued. False when the peer is gone (EPIPE, ECONNRESET, ...).
bool Connection::flush() noexcept {
    while (out_sent_ < out_.size()) {
        const ssize_t n =
            ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
        if (n > 0) {
            out_sent_ += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // EPOLLOUT resumes
        return false;
    }
    out_.clear();
    out_sent_ = 0;
    release_if_large(out_);
    return true;
}

// Answers the next buffered request if it is complete. True when something changed.
bool Connection::serve_next_request() noexcept {
    const std::string_view buffered = std::string_view(in_).substr(in_start_);
    if (buffered.empty()) return false;
    http::RequestHead& head = ctx_.head;
    const http::ParseResult parsed = http::parse_request(buffered, head);
    if (parsed.status == http::ParseStatus::incomplete) return false;
    if (parsed.status == http::ParseStatus::error) {
        reject(http::status_for(parsed.error), http::message_for(parsed.error));
        return true;
    }
    std::string_view body;
    std::size_t request_length = 0;
    if (!take_body(buffered, head, body, request_length)) return phase_ != Phase::reading;
    start_exchange(head, buffered.substr(0, head.head_length), body);
    consume(request_length);
    end_request_body();
    return true;
}

// Finds the body of the request whose head is parsed. False while it is incomplete
// (after asking for it with 100 Continue if the client waits for that) or rejected.
bool Connection::take_body(std::string_view buffered, const http::RequestHead& head,
                           std::string_view& body, std::size_t& request_length) noexcept {
    const std::string_view after_head = buffered.substr(head.head_length);
    if (head.body == http::BodyKind::content_length) {
        if (head.content_length > kMaxBody) {
            reject(413, http::message_for(http::Error::body_too_large));
            return false;
        }
        if (after_head.size() < head.content_length) {
            send_continue(head);
            return false;
        }
        body = after_head.substr(0, static_cast<std::size_t>(head.content_length));
        request_length = head.head_length + body.size();
        return true;
    }
    if (head.body == http::BodyKind::chunked) {
        const auto keep = [this](std::string_view data) { chunked_body_.append(data); };
        const auto fed = decoder_.feed(after_head.substr(chunked_fed_), keep);
        chunked_fed_ += fed.consumed;
        if (fed.error != http::Error::none) {
            reject(http::status_for(fed.error), http::message_for(fed.error));
            return false;
        }
        if (!fed.done) {
            send_continue(head);
            return false;
        }
        body = chunked_body_;
        request_length = head.head_length + chunked_fed_;
        return true;
    }
    request_length = head.head_length;
    return true;
}

void Connection::send_continue(const http::RequestHead& head) noexcept {
    if (!head.expect_continue || continue_sent_) return;
    out_ += "HTTP/1.1 100 Continue\r\n\r\n";
    continue_sent_ = true;
}

void Connection::start_exchange(const http::RequestHead& head, std::string_view raw_head,
                                std::string_view body) noexcept {
    if (head.path.starts_with(kIntrospectionPrefix)) {
        append_introspection_answer(head, ctx_.state, out_, ctx_.text);
        phase_ = head.keep_alive ? Phase::reading : Phase::closing;
        return;
    }
    ctx_.stats.add(Counter::requests);
    ctx_.state.record_last(ctx_.index, raw_head, body);
    // Unique across loops: the loop index sits in the low bits (at most 64 loops).
    const std::uint64_t serial = (ctx_.next_serial++ << 6) | ctx_.index;
    plan_exchange(head, body, ctx_.json, serial, ex_);
    ex_.instance = ctx_.state.name();
    if (const int failing = ctx_.state.failing_status(head.path); failing != 0) {
        ex_.behaviour = Behaviour{};  // a failing path fails now, whatever the headers ask
        ex_.status = failing;
        ex_.error = "mock failure set for " + std::string(head.path);
    }
    openai::settle_responses(ex_, ctx_.state.responses());

    switch (ex_.behaviour.mode) {
        case Mode::reset:
            flush();  // answers to earlier pipelined requests, if the socket takes them
            ctx_.stats.add(Counter::resets);
            reset_on_close_ = true;
            phase_ = Phase::closed;
            return;
        case Mode::hang:
            phase_ = Phase::hanging;
            return;
        default:
            break;
    }
    if (ex_.behaviour.delay_ms > 0) {
        phase_ = Phase::delaying;
        arm_timer(ex_.behaviour.delay_ms);
        return;
    }
    answer();
}

// Sends the answer of ex_ (after its delay, if any).
void Connection::answer() noexcept {
    if (ex_.streams()) return start_stream();
    const std::size_t body_size = append_answer(ex_, out_, ctx_.text);
    if (ex_.behaviour.mode == Mode::close_mid_stream) {
        out_.resize(out_.size() - (body_size - body_size / 2));  // keep the first half
        phase_ = Phase::closing;
        return;
    }
    phase_ = ex_.keep_alive ? Phase::reading : Phase::closing;
}

void Connection::start_stream() noexcept {
    append_stream_head(ex_, out_, ctx_.text);
    ctx_.stats.add(Counter::streams_started);
    const std::uint32_t deltas = ex_.behaviour.chunks;
    // Units are the N deltas and then the end; close-mid-stream stops after half the deltas.
    units_ = ex_.behaviour.mode == Mode::close_mid_stream ? (deltas + 1) / 2 : deltas + 1;
    next_unit_ = 0;
    phase_ = Phase::streaming;
    if (ex_.behaviour.first_event_delay_ms > 0) {
        arm_timer(ex_.behaviour.first_event_delay_ms);  // the head goes out now, the events after
        return;
    }
    emit_stream();
}

// Queues stream units until one has to wait: for the chunk delay, or for the
// socket to drain. True when it queued anything or the stream moved on.
bool Connection::emit_stream() noexcept {
    const std::uint32_t deltas = ex_.behaviour.chunks;
    const std::uint32_t pause_ms = ex_.behaviour.chunk_delay_ms;
    bool queued = false;
    while (next_unit_ < units_) {
        if (pending_out() >= kHighWater) return queued;
        if (next_unit_ < deltas) append_stream_delta(ex_, next_unit_, out_, ctx_.text);
        else append_stream_end(ex_, out_, ctx_.text);
        ++next_unit_;
        queued = true;
        if (next_unit_ < units_ && pause_ms > 0) {
            arm_timer(pause_ms);
            return true;
        }
    }
    if (ex_.behaviour.mode == Mode::close_mid_stream) {
        ctx_.stats.add(Counter::streams_broken);
        phase_ = Phase::closing;  // no terminating chunk: the body is cut short
    } else {
        phase_ = Phase::stream_ending;
    }
    return true;
}

void Connection::reject(int status, std::string_view message) noexcept {
    append_error_answer(status, message, false, false, out_, ctx_.text);
    in_.clear();
    in_start_ = 0;
    phase_ = Phase::closing;
}

void Connection::peer_gone() noexcept {
    switch (phase_) {
        case Phase::delaying: ctx_.stats.add(Counter::delays_aborted); break;
        case Phase::hanging: ctx_.stats.add(Counter::hangs_aborted); break;
        case Phase::streaming:
        case Phase::stream_ending: ctx_.stats.add(Counter::streams_cut); break;
        default: break;
    }
    phase_ = Phase::closed;
}

void Connection::arm_timer(std::uint32_t ms) noexcept {
    timer_armed_ = true;
    const std::int64_t due = monotonic_ns() + std::int64_t{ms} * 1'000'000;
    ctx_.timers.add(TimerEntry{due, slot_, generation_, ++timer_token_});
}

void Connection::consume(std::size_t n) noexcept {
    in_start_ += n;
    if (in_start_ == in_.size()) {
        in_.clear();
        in_start_ = 0;
        release_if_large(in_);
    } else if (in_start_ >= std::size_t{64} * 1024) {
        in_.erase(0, in_start_);  // rare: a long pipelined burst
        in_start_ = 0;
    }
}

void Connection::end_request_body() noexcept {
    decoder_.reset(kMaxBody);
    chunked_fed_ = 0;
    chunked_body_.clear();
    release_if_large(chunked_body_);
    continue_sent_ = false;
}

}  // namespace rr::mock

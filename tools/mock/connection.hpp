// One accepted client connection of the mock: reads requests (keep-alive,
// pipelining, Content-Length and chunked bodies, Expect: 100-continue), answers them
// one at a time in order, and plays the behaviour each asks for (delay, stream with
// pauses, hang, reset, close-mid-stream).
//
// Driven by its loop: on_events() for epoll readiness (registered edge-triggered
// for EPOLLIN | EPOLLOUT | EPOLLRDHUP), on_timer() when a deadline it armed is due.
// When closed() turns true the loop destroys it, which closes the socket (with an
// RST for x-mock-behavior: reset). The peer going away (FIN, RST, failed send) is
// noticed in every phase, including while waiting on a timer or hanging, and
// counted by what was interrupted (delays_aborted, hangs_aborted, streams_cut).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <ringrelay/http.hpp>

#include "context.hpp"
#include "exchange.hpp"

namespace rr::mock {

inline constexpr std::uint64_t kMaxBody = std::uint64_t{16} * 1024 * 1024;

class Connection {
public:
    // Takes ownership of fd (non-blocking, already in the loop's epoll set).
    Connection(int fd, std::uint32_t slot, std::uint32_t generation, LoopContext& ctx) noexcept;
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void on_events(std::uint32_t epoll_events) noexcept;
    // token identifies the timer; a stale one (superseded or already handled) is ignored.
    void on_timer(std::uint64_t token) noexcept;
    bool closed() const noexcept { return phase_ == Phase::closed; }

private:
    enum class Phase : std::uint8_t {
        reading,        // waiting for (the rest of) the next request
        delaying,       // x-mock-delay-ms, before the head
        streaming,      // between stream events
        stream_ending,  // last event queued; complete once the socket took it all
        hanging,        // x-mock-behavior: hang
        closing,        // send what is queued, then close
        closed,
    };

    void drive() noexcept;
    bool advance() noexcept;
    void settle() noexcept;
    bool read_socket() noexcept;
    bool flush() noexcept;

    bool serve_next_request() noexcept;
    bool take_body(std::string_view buffered, const http::RequestHead& head, std::string_view& body,
                   std::size_t& request_length) noexcept;
    void send_continue(const http::RequestHead& head) noexcept;
    void start_exchange(const http::RequestHead& head, std::string_view raw_head,
                        std::string_view body) noexcept;
    void answer() noexcept;
    void start_stream() noexcept;
    bool emit_stream() noexcept;

    void reject(int status, std::string_view message) noexcept;
    void peer_gone() noexcept;
    void arm_timer(std::uint32_t ms) noexcept;
    void consume(std::size_t n) noexcept;
    void end_request_body() noexcept;
    std::size_t pending_out() const noexcept { return out_.size() - out_sent_; }

    int fd_;
    std::uint32_t slot_;
    std::uint32_t generation_;
    LoopContext& ctx_;

    Phase phase_ = Phase::reading;
    bool peer_eof_ = false;      // FIN received: the peer sends no more
    bool more_to_read_ = false;  // readable, and not read to EAGAIN yet
    bool continue_sent_ = false;
    bool timer_armed_ = false;
    bool reset_on_close_ = false;
    std::uint64_t timer_token_ = 0;

    std::string in_;  // received bytes; in_[in_start_..] not consumed yet
    std::size_t in_start_ = 0;
    std::string out_;  // bytes to send; out_[out_sent_..] not sent yet
    std::size_t out_sent_ = 0;

    http::ChunkedDecoder decoder_{kMaxBody};
    std::size_t chunked_fed_ = 0;  // bytes after the head already given to decoder_
    std::string chunked_body_;     // decoded chunked body of the current request

    Exchange ex_;                 // the request being answered
    std::uint32_t next_unit_ = 0; // stream: next event unit (deltas, then the end)
    std::uint32_t units_ = 0;     // stream: units to send before the end or the cut
};

}  // namespace rr::mock

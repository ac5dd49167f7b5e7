// The request path inside a shard: a client session reads request heads, answers
// what it can locally, and hands the rest to forward_request(), which relays one
// exchange to an upstream and streams the answer back.
//
// Ownership: run_client_session() owns the client socket (it takes the accepted fd)
// and the ClientSession on its frame; every function here borrows the session and
// the RequestContext, which must outlive the await. A RequestContext's head views
// point into the session's inbound bytes and die at consume_head(); its captured
// strings are owned. Pointers set on them by a stage (body_observer, cut) are
// borrowed and cleared by that stage before its object dies.
//
// Threads: a session and everything it touches belong to the shard that accepted it.
//
// Errors: nothing is thrown on this path. An upstream failure becomes either an
// answer to the client (the outcome says answered) or, when the plan allows it and
// nothing reached the client, ForwardOutcome::retry; the send helpers return whether
// the connection may stay open (false: the client is gone or must be closed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringrelay/relay/inbound.hpp"
#include "ringrelay/relay/rewrite.hpp"
#include "ringrelay/http.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/obs/access_log.hpp"
#include "ringrelay/obs/metrics.hpp"
#include "ringrelay/relay/shard.hpp"

namespace rr::relay {

class ResponseBodyObserver;  // body_tracker.hpp

// What a waiting stage does about its client (see StopWhenClientGone): the upstream
// exchange aborts its upstream socket, a key-slot or token wait interrupts itself.
// Runs on the shard's thread, from a CQE's dispatch or a drain's cut_now(): it must
// not resume a coroutine itself (abort and interrupt defer to the loop).
class ClientGoneHandler {
public:
    // The client is gone (see ClientGoneAt) or the session is being cut: stop.
    virtual void stop() noexcept = 0;
    // The client's EOF came but does not count as gone (ClientGoneAt::failure): a
    // chance to send bytes that find out whether it closed fully.
    virtual void on_eof() noexcept {}

protected:
    ~ClientGoneHandler() = default;
};

struct ClientSession {
    ClientSession(Shard& s, io::Socket* sock, PeerAddress p) noexcept : shard(s), socket(sock), peer(p), in(sock) {}
    Shard& shard;
    io::Socket* socket;
    PeerAddress peer;
    Inbound in;

    bool admin = false;       // accepted on the admin listener: served by serve_admin()
    // What else to cut when the session must end now (drain timeout): set by the
    // stage that is waiting (the upstream exchange, a token wait), through its
    // StopWhenClientGone; borrowed, null when nothing waits.
    ClientGoneHandler* cut = nullptr;
    // The shard's list of live sessions (for drain).
    ClientSession* prev = nullptr;
    ClientSession* next = nullptr;

    // Ends the session now: whatever it waits for ends with -ECANCELED. Resumes
    // nothing by itself (abort and interrupt defer to the loop), so a caller may cut
    // many sessions in one go.
    void cut_now() noexcept {
        socket->abort();
        if (cut) cut->stop();
    }
};

// What counts as a client that is gone, for StopWhenClientGone.
enum class ClientGoneAt {
    // Its EOF. For the waits before anything went upstream (key slot, token): a
    // client that closes while queued frees its place at once. A FIN cannot tell a
    // half-close from a full close, and there nothing is lost by cutting.
    eof,
    // Its socket failing (reset, error) only. For the upstream exchange: HTTP/1.1
    // lets a client half-close (shutdown(SHUT_WR)) after its request and still read
    // the answer, which the upstream may already be working (and billing) on. A
    // client that closed fully is found out by bytes we send it: its kernel answers
    // them with RST, which the socket's post-EOF watch (or the next send, failing)
    // reports. The handler's on_eof runs when the EOF is seen, to send such bytes
    // if none are on their way (the exchange's probe, see exchange.cpp).
    failure,
};

// While alive, the waiting stage's handler.stop() runs when the client is gone (see
// ClientGoneAt) or a drain that timed out cuts the session (cut_now), so a stream
// whose reader is gone stops costing the upstream anything and a queued request
// frees its place. If the client is already gone, stop runs at once (and on_eof, if
// its EOF came already). The guard borrows the session and the handler: both must
// outlive it; it holds the client socket's one peer-gone listener and the session's
// cut while alive, so only one may exist per session at a time. Shard thread only.
class StopWhenClientGone final : io::PeerGoneListener {
public:
    StopWhenClientGone(ClientSession& cs, ClientGoneHandler& handler, ClientGoneAt at = ClientGoneAt::eof) noexcept
        : cs_(cs), handler_(handler), at_(at) {
        cs.socket->set_on_peer_gone(this);
        cs.cut = &handler;
        on_peer_gone();
    }
    ~StopWhenClientGone() {
        cs_.socket->set_on_peer_gone(nullptr);
        cs_.cut = nullptr;
    }
    StopWhenClientGone(const StopWhenClientGone&) = delete;
    StopWhenClientGone& operator=(const StopWhenClientGone&) = delete;

private:
    bool gone() const noexcept {
        return cs_.socket->peer_failed() || (at_ == ClientGoneAt::eof && cs_.socket->peer_closed());
    }
    void on_peer_gone() noexcept override {
        if (gone()) {
            handler_.stop();
        } else if (cs_.socket->peer_closed()) {
            handler_.on_eof();
        }
    }
    ClientSession& cs_;
    ClientGoneHandler& handler_;
    ClientGoneAt at_;
};

// One request in flight: its parsed head (views into the session's inbound bytes,
// valid until the head is consumed), the owned facts that outlive it, and what the
// access log will need.
struct RequestContext {
    http::RequestHead head;
    char id_storage[128];
    std::string_view request_id;
    std::uint64_t start_ms = 0;
    std::uint64_t start_ns = 0;  // monotonic, for the logged latency

    // Copied from the head before it is consumed.
    CapturedRequest captured;
    http::BodyKind body_kind = http::BodyKind::none;
    std::uint64_t content_length = 0;
    int version_minor = 1;
    bool keep_alive = true;
    bool expect_continue = false;
    bool is_head = false;
    bool idempotent = false;  // GET, HEAD, PUT, DELETE, OPTIONS (RFC 9110 9.2.2): safe to send again
    bool head_consumed = false;

    int status = 0;                // what the client got
    std::string_view error_code;   // gateway-made errors only
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    // What of a response the client has seen: one progression, only ever forward.
    // Nothing yet (another channel may still be tried); ringrelay's own early SSE head
    // (early_stream.hpp: an error can still be sent as an SSE event); the upstream's
    // answer under way, on its own or inside that early stream.
    enum class ClientSaw : std::uint8_t { nothing, early_stream_head, upstream_answer, upstream_in_early_stream };
    ClientSaw client_saw = ClientSaw::nothing;
    // A byte of the response reached the client.
    bool response_started() const noexcept { return client_saw != ClientSaw::nothing; }
    // An early SSE head went out (whatever followed it).
    bool stream_started() const noexcept {
        return client_saw == ClientSaw::early_stream_head || client_saw == ClientSaw::upstream_in_early_stream;
    }
    // The upstream's answer began to reach the client.
    bool upstream_body_sent() const noexcept { return client_saw >= ClientSaw::upstream_answer; }
    void saw_early_stream_head() noexcept { client_saw = ClientSaw::early_stream_head; }
    void saw_upstream_answer() noexcept {
        if (client_saw == ClientSaw::nothing) client_saw = ClientSaw::upstream_answer;
        else if (client_saw == ClientSaw::early_stream_head) client_saw = ClientSaw::upstream_in_early_stream;
    }

    // Set by the gateway, may be null: sees the response body pass, and is told once
    // the upstream's body is complete and before its last bytes go to the client, so
    // what it counted is accounted before the client can send its next request.
    // Cleared when told (at most once per request).
    ResponseBodyObserver* body_observer = nullptr;
    int upstream_status = 0;
    std::uint64_t upstream_ms = 0;  // from sending the request to the end of the response
    // Whose request it was and what it used: written by the gateway's stages only
    // (the relay leaves it empty), read by finish_request for the log and metrics.
    obs::RequestAttribution attribution;
};

// Where and how to forward: set by the routing stage (relay mode: the one
// upstream; gateway mode: the picked channel with its credential).
struct ForwardPlan {
    std::uint32_t target = 0;
    std::string_view extra_headers;  // complete "Name: value\r\n" lines to add
    bool has_body_override = false;  // the body was read and (maybe) rewritten
    std::string_view body_override;
    // May the caller try another upstream? Then a failure the upstream provably did
    // not act on (failed connect, request not accepted, its own 429/503) is handed
    // back (nothing sent to the client) instead of answered; for an idempotent method
    // or with --retry-non-idempotent also a reset, timeout, other 5xx or cut-short answer.
    bool retry_allowed = false;
    std::uint64_t upstream_timeout_ms = 0;  // 0: the --upstream-timeout setting
    // Connect + response head (SSE: + first body byte) within this, else the attempt
    // ends as a first-byte timeout (retried elsewhere when retry_allowed, even after
    // the upstream may have read it). 0: the --first-byte-timeout setting; off: none.
    std::uint64_t first_byte_timeout_ms = 0;
    bool first_byte_timeout_off = false;
    HiddenResponseFields hidden_response_fields;  // kept out of the client's response head
};

struct ForwardOutcome {
    enum Kind {
        answered,  // the client got a response (the upstream's, or our error)
        retry,     // nothing reached the client; another upstream may be tried
    } kind = answered;
    bool keep_alive = false;  // answered: may the connection carry another request
    int upstream_status = 0;  // retry: the upstream's status, 0 if it never answered
    int status = 0;           // retry: the error we would answer with (502/504)
    std::string_view code;    // retry: its code
    std::string message;      // retry: what failed
    obs::ReplayReason replay_reason = obs::ReplayReason::upstream_failed;  // retry: why another may be tried
    bool first_byte_timeout = false;  // the attempt was cut by the first-byte timeout (either kind)
};

// Fills rc's owned facts and rc.captured from rc.head (call before consuming it).
void capture_head(ClientSession& cs, RequestContext& rc, bool strip_client_auth, bool replace_body);
// Consumes the parsed head from the client's bytes (once).
void consume_head(ClientSession& cs, RequestContext& rc) noexcept;

// Relays the request and its response. rc must be captured; the head is consumed
// here if it was not yet; with plan.has_body_override the body has been read.
io::Task<ForwardOutcome> forward_request(ClientSession& cs, RequestContext& rc, const ForwardPlan& plan);

// Sends a response the gateway makes itself (JSON error body, X-Ringrelay-Error,
// plus extra_headers lines such as Retry-After). Returns whether the connection
// may stay open.
io::Task<bool> send_error(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                          std::string_view message, bool keep_alive, std::string_view extra_headers = {});

// Sends a response the shard built itself in out (taken from shard.buffers(), given
// back here) and counts its bytes in rc. Returns keep_alive if the send went through.
io::Task<bool> send_response(ClientSession& cs, RequestContext& rc, std::string& out, bool keep_alive);

// Sends a JSON response (200 /healthz, /readyz, /v1/models, the admin API's answers).
// With the draining shard it closes the connection. Returns whether it may go on.
io::Task<bool> send_json(ClientSession& cs, RequestContext& rc, int status, std::string_view body, bool keep_alive);

io::Detached run_client_session(Shard& shard, int fd, bool admin);

}  // namespace rr::relay

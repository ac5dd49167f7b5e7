// forward_request: one request relayed to an upstream and its response streamed
// back. The flow reads top to bottom: head out, body out, head back, body back.
// Every byte crosses as a view of a provided buffer, except the small pieces that
// ride along with a head so that a typical exchange is one send each way.
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "ringrelay/relay/body_tracker.hpp"
#include "ringrelay/relay/early_stream.hpp"
#include "ringrelay/relay/head_reader.hpp"
#include "ringrelay/relay/rewrite.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::relay {
namespace {

// Bytes of a response body that still go out in the same send as the head.
constexpr std::size_t kRideAlongBytes = 16 * 1024;

// How one attempt on one upstream connection ended.
struct Attempt {
    enum Kind { done, stale, failed, client_gone, truncated, refused } kind = done;
    int status = 0;  // failed: what the client gets; refused: the upstream's status
    std::string_view code;
    std::string message;
    bool client_keep_alive = false;
    bool upstream_reusable = false;
    // The upstream provably did not read the request: sending it again anywhere
    // cannot run it twice. Why, for ringrelay_upstream_replays_total if it is.
    bool unread = false;
    obs::ReplayReason reason = obs::ReplayReason::upstream_failed;
    // Cut by the first-byte timeout (no head, or an SSE answer's first body byte, in
    // time): another upstream may be tried even after this one may have read the
    // request, because the operator asked for it (--first-byte-timeout).
    bool first_byte = false;
};

Attempt ended(Attempt::Kind kind) {
    Attempt a;
    a.kind = kind;
    return a;
}

Attempt failure(int status, std::string_view code, std::string message) {
    Attempt a;
    a.kind = Attempt::failed;
    a.status = status;
    a.code = code;
    a.message = std::move(message);
    return a;
}

Attempt io_failure(int err, std::string_view what) {
    if (err == -ETIMEDOUT) return failure(504, "upstream_timeout", "upstream timed out");
    return failure(502, "upstream_error", std::string(what) + ": " + std::strerror(-err));
}

// The upstream's answer did not start within the first-byte timeout.
Attempt first_byte_timed_out() {
    Attempt a = failure(504, "upstream_timeout", "upstream timed out");
    a.first_byte = true;
    a.reason = obs::ReplayReason::first_byte_timeout;
    return a;
}

// An SSE answer (text/event-stream) with a body to come: the first-byte timeout
// also waits for its first body byte, since a head alone says little of a stream.
bool streams_events(const http::ResponseHead& resp) noexcept {
    if (resp.body == http::BodyKind::none || (resp.body == http::BodyKind::content_length && resp.content_length == 0))
        return false;
    static constexpr std::string_view kSse = "text/event-stream";
    for (const http::Header& h : resp.fields())
        if (http::iequals(h.name, "content-type"))
            return h.value.size() >= kSse.size() && http::iequals(h.value.substr(0, kSse.size()), kSse);
    return false;
}

// An attempt that ended before the upstream could have read the request.
Attempt unread(Attempt a, obs::ReplayReason why) {
    a.unread = true;
    a.reason = why;
    return a;
}

// May the request go to an upstream again after one that may have read it? RFC 9110
// 9.2.2: only an idempotent method, unless the operator allows more
// (--retry-non-idempotent): a POST may have run, and been billed, already.
bool replay_after_read(const RequestContext& rc, const ServeSettings& st) noexcept {
    return rc.idempotent || st.retry_non_idempotent;
}

// Whether an upstream's answer with this status is handed back for another upstream
// instead of relayed. 429 and 503 are the upstream's own "not now": it did not run
// the request. Another 5xx may come after it ran, so only when replay_after_read.
bool refused_status(int status, bool after_read) noexcept {
    if (status == 429 || status == 503) return true;
    return after_read && status >= 500;
}

// Copies the request body bytes that have already arrived into out (after the head).
void append_received_body(Inbound& in, BodyTracker& body, std::string& out) {
    while (!body.done() && !in.empty() && body.error() == http::Error::none) {
        const std::string_view view = in.peek();
        const std::size_t n = body.measure(view);
        out.append(view.substr(0, n));
        in.consume(n);
        if (n < view.size()) break;
    }
}

// Streams the rest of the request body from the client to the upstream.
io::Task<Attempt> stream_request_body(ClientSession& cs, RequestContext& rc, io::Socket& up, BodyTracker& body) {
    const ServeSettings& st = cs.shard.settings();
    io::Loop& loop = cs.shard.loop();
    while (!body.done()) {
        if (cs.in.empty()) {
            const int r = co_await cs.socket->readable(loop.now_ms() + st.stream_idle_timeout_ms);
            if (r == -ETIMEDOUT) co_return failure(408, "request_timeout", "request body not received in time");
            if (r != io::Socket::kData) co_return ended(Attempt::client_gone);
            continue;
        }
        const std::string_view view = cs.in.peek();
        const std::size_t n = body.measure(view);
        if (body.error() != http::Error::none)
            co_return failure(http::status_for(body.error()), "bad_request", std::string(http::message_for(body.error())));
        const int s = co_await up.send(view.substr(0, n), loop.now_ms() + st.stream_idle_timeout_ms);
        if (s < 0) co_return up.aborted() ? ended(Attempt::client_gone) : io_failure(s, "sending to upstream failed");
        cs.in.consume(n);
        rc.bytes_in += n;
    }
    co_return Attempt{};
}

// The upstream's body is all in (and shown to the observer): tell it before the last
// bytes go out. Once per request: a request whose body completed is not tried again.
void body_complete(RequestContext& rc) noexcept {
    if (ResponseBodyObserver* observer = std::exchange(rc.body_observer, nullptr)) observer->on_body_end();
}

// Streams the response body after its head; out is free scratch space.
io::Task<Attempt> stream_response_body(ClientSession& cs, RequestContext& rc, Inbound& up_in, BodyTracker& body,
                                       ClientFraming framing, std::string& out) {
    const ServeSettings& st = cs.shard.settings();
    io::Loop& loop = cs.shard.loop();
    io::Socket& up = up_in.socket();
    while (!body.done()) {
        if (up_in.empty()) {
            const int r = co_await up.readable(loop.now_ms() + st.stream_idle_timeout_ms);
            if (r == io::Socket::kEof) {
                body.end_of_stream();
                if (body.done()) break;
                co_return ended(Attempt::truncated);
            }
            if (r < 0) co_return ended(up.aborted() ? Attempt::client_gone : Attempt::truncated);
            continue;
        }
        const std::string_view view = up_in.peek();
        std::string_view piece;
        std::size_t n;
        if (framing == ClientFraming::dechunk) {
            out.clear();
            n = body.measure(view, &out);
            piece = out;
        } else if (framing == ClientFraming::early_wrap) {
            std::string& payload = cs.shard.scratch();
            payload.clear();
            n = body.measure(view, &payload);
            out.clear();
            append_stream_piece(out, rc, payload);
            if (body.done()) out.append(stream_terminator(rc));
            piece = out;
        } else {
            n = body.measure(view);
            piece = view.substr(0, n);
            if (loop.buffers().under_pressure()) [[unlikely]] {
                // A slow client would keep this ring buffer for as long as it takes to
                // read it: send a copy and give the buffer back first.
                out.assign(piece);
                piece = out;
            }
        }
        if (body.error() != http::Error::none) co_return ended(Attempt::truncated);
        // A piece of our own (re-framed or copied) needs no received byte: consuming
        // first recycles the ring buffer before a send that may block.
        const bool piece_is_ours = piece.data() == out.data();
        if (piece_is_ours) up_in.consume(n);
        if (body.done()) body_complete(rc);
        const int s = co_await cs.socket->send(piece, loop.now_ms() + st.stream_idle_timeout_ms);
        if (s < 0) co_return ended(Attempt::client_gone);
        rc.bytes_out += piece.size();
        if (!piece_is_ours) up_in.consume(n);
    }
    co_return Attempt{};
}

// Reads the upstream's response head, skipping interim (1xx) responses.
io::Task<HeadRead> read_response_head(Inbound& up_in, http::ResponseHead& resp, bool is_head, std::uint64_t deadline) {
    for (;;) {
        const HeadRead hr = co_await read_head(
            up_in, [&](std::string_view b) { return http::parse_response(b, resp, is_head); }, deadline);
        if (hr.outcome != HeadOutcome::complete || resp.status >= 200) co_return hr;
        up_in.consume(resp.head_length);
    }
}

// One try on one upstream connection: request out, response back.
io::Task<Attempt> attempt_exchange(ClientSession& cs, RequestContext& rc, upstream::UpstreamConn& conn,
                                   std::string& out, BodyTracker& body, const ForwardPlan& plan,
                                   std::uint64_t first_byte_deadline, bool first_byte_cuts) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    io::Loop& loop = shard.loop();
    io::Socket& up = *conn.socket;

    const int s = co_await up.send(out, loop.now_ms() + st.stream_idle_timeout_ms);
    if (s < 0) {
        // The connection refused the request before it was all accepted (a pooled one
        // the upstream had closed, or a reset): the upstream cannot have run it.
        if (up.aborted()) co_return ended(Attempt::client_gone);
        if (conn.reused) co_return unread(ended(Attempt::stale), obs::ReplayReason::stale_connection);
        co_return unread(io_failure(s, "sending to upstream failed"), obs::ReplayReason::connect_failed);
    }
    if (Attempt a = co_await stream_request_body(cs, rc, up, body); a.kind != Attempt::done) co_return a;

    Inbound up_in(&up);
    http::ResponseHead resp;
    const HeadRead hr = co_await read_response_head(up_in, resp, rc.is_head, first_byte_deadline);
    switch (hr.outcome) {
    case HeadOutcome::complete:
        break;
    case HeadOutcome::timeout:
        if (first_byte_cuts) co_return first_byte_timed_out();
        co_return failure(504, "upstream_timeout", "upstream timed out");
    case HeadOutcome::parse_error:
        co_return failure(502, "upstream_error", "upstream sent an invalid response head");
    case HeadOutcome::closed:
    case HeadOutcome::failed:
        if (up.aborted()) co_return ended(Attempt::client_gone);
        if (!hr.got_bytes && conn.reused) {  // sent, then closed unanswered: it may have read it
            Attempt a = ended(Attempt::stale);
            a.reason = obs::ReplayReason::no_response;
            co_return a;
        }
        if (hr.outcome == HeadOutcome::closed)
            co_return failure(502, "upstream_error", "upstream closed the connection before responding");
        co_return io_failure(hr.io_error, "upstream connection failed");
    }

    if (plan.retry_allowed && refused_status(resp.status, replay_after_read(rc, st))) {
        Attempt refused = ended(Attempt::refused);  // another upstream may do better
        refused.status = resp.status;
        if (resp.status == 429 || resp.status == 503) refused = unread(refused, obs::ReplayReason::upstream_refused);
        co_return refused;
    }
    if (rc.stream_started() && (resp.status < 200 || resp.status >= 300))
        co_return failure(502, "upstream_error", "upstream answered " + std::to_string(resp.status));
    ClientFraming framing = choose_framing(resp, rc.version_minor);
    if (rc.stream_started() && framing != ClientFraming::chunked) framing = ClientFraming::early_wrap;
    Attempt result;
    result.client_keep_alive = rc.keep_alive && framing != ClientFraming::until_close &&
                               framing != ClientFraming::dechunk && !shard.draining() &&
                               !(rc.stream_started() && rc.version_minor == 0);
    out.clear();
    // An early stream has its head out already: the upstream's chunked body splices
    // straight in (its last chunk ends our response too); anything else is re-framed.
    if (!rc.stream_started())
        append_client_head(out, resp, framing, rc.request_id, result.client_keep_alive, rc.version_minor,
                           plan.hidden_response_fields);
    rc.status = resp.status;
    rc.upstream_status = resp.status;
    const bool upstream_keep_alive = resp.keep_alive;
    const bool await_first_event = first_byte_cuts && streams_events(resp);
    BodyTracker rbody(resp.body, resp.content_length);
    if (rc.body_observer) rbody.set_observer(rc.body_observer);
    up_in.consume(resp.head_length);  // resp's views die here

    // Nothing has gone to the client yet: a stream whose first event does not come
    // within the first-byte timeout can still go to another upstream.
    if (await_first_event && up_in.empty()) {
        const int r = co_await up.readable(first_byte_deadline);
        if (up.aborted()) co_return ended(Attempt::client_gone);
        if (r == -ETIMEDOUT) {
            rc.status = 0;
            rc.upstream_status = 0;
            co_return first_byte_timed_out();
        }
    }

    if (!up_in.empty() && up_in.peek().size() <= kRideAlongBytes) {
        const std::string_view view = up_in.peek();
        if (framing == ClientFraming::dechunk) {
            up_in.consume(rbody.measure(view, &out));
        } else if (framing == ClientFraming::early_wrap) {
            std::string& payload = shard.scratch();
            payload.clear();
            up_in.consume(rbody.measure(view, &payload));
            append_stream_piece(out, rc, payload);
        } else {
            const std::size_t n = rbody.measure(view);
            out.append(view.substr(0, n));
            up_in.consume(n);
        }
        if (rbody.error() != http::Error::none) co_return ended(Attempt::truncated);
    }
    if (framing == ClientFraming::early_wrap && rbody.done()) out.append(stream_terminator(rc));
    if (rbody.done()) body_complete(rc);
    if (co_await cs.socket->send(out, loop.now_ms() + st.stream_idle_timeout_ms) < 0)
        co_return ended(Attempt::client_gone);
    rc.saw_upstream_answer();
    rc.bytes_out += out.size();

    if (Attempt a = co_await stream_response_body(cs, rc, up_in, rbody, framing, out); a.kind != Attempt::done)
        co_return a;
    result.upstream_reusable = upstream_keep_alive && rbody.done() && up_in.empty() && !up.aborted();
    co_return result;
}

// A client's FIN during the exchange: it half-closed (and still reads) or it closed
// fully (gone). Only bytes sent to it tell the two apart: a closed one's kernel answers
// them with RST, which the socket's post-EOF watch hears, and the exchange is cut at
// once instead of running (and holding its key slot and token) until the upstream's
// timeout. Once the response is under way its own bytes do that; before its head, an
// interim "100 Continue" does, which an HTTP/1.1 client must accept and skip (RFC 9110
// 15.2) and an HTTP/1.0 one must not get. Not sent on TLS (no plaintext outside a
// record), after an early SSE head (the response is under way: its pings and chunks
// probe), or while a send is in flight (those bytes probe). A client that is gone
// aborts the upstream socket.
struct ClientProbe final : ClientGoneHandler {
    ClientProbe(ClientSession& c, const RequestContext& r, io::Socket& up) noexcept : cs(c), rc(r), upstream(up) {}
    ClientSession& cs;
    const RequestContext& rc;
    io::Socket& upstream;
    bool sent = false;

    void stop() noexcept override { upstream.abort(); }
    void on_eof() noexcept override {
        if (sent || rc.response_started() || rc.stream_started() || rc.version_minor == 0) return;
        static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
        sent = cs.socket->send_now(k100);
    }
};

// When an exchange's connect and head must be done by: the upstream timeout, or
// the first-byte timeout when one is set and shorter (its expiry is then a
// first-byte timeout, which may go to another channel).
struct HeadDeadline {
    std::uint64_t at_ms = 0;
    bool first_byte_cuts = false;
};

HeadDeadline head_deadline(Shard& shard, const ForwardPlan& plan) noexcept {
    const std::uint64_t timeout = plan.upstream_timeout_ms ? plan.upstream_timeout_ms : shard.settings().upstream_timeout_ms;
    const std::uint64_t first_byte = plan.first_byte_timeout_off ? 0
                                     : plan.first_byte_timeout_ms ? plan.first_byte_timeout_ms
                                                                  : shard.settings().first_byte_timeout_ms;
    HeadDeadline d;
    d.first_byte_cuts = first_byte != 0 && first_byte < timeout;
    d.at_ms = shard.loop().now_ms() + (d.first_byte_cuts ? first_byte : timeout);
    return d;
}

// Which connection an exchange goes out on.
enum class ConnChoice { idle_or_new, new_only };

// One exchange on one upstream connection: an idle pooled one if allowed and there
// is one, else a new one. The lease closes the connection on every way out but a
// completed exchange, which hands it back to the pool.
io::Task<Attempt> exchange_once(ClientSession& cs, RequestContext& rc, const ForwardPlan& plan, std::string& out,
                                BodyTracker& body, const HeadDeadline& deadline, ConnChoice choice) {
    Shard& shard = cs.shard;
    upstream::UpstreamPool& pool = shard.pool();
    upstream::ConnLease conn;
    if (choice == ConnChoice::idle_or_new) conn = pool.take_idle(plan.target);
    if (!conn) {
        upstream::Acquired a = co_await pool.connect(plan.target, deadline.at_ms);
        if (!a.conn) {
            if (a.reason.empty() || a.error == -ETIMEDOUT) {
                Attempt failed = unread(io_failure(a.error, "cannot connect to upstream"), obs::ReplayReason::connect_failed);
                failed.first_byte = deadline.first_byte_cuts && a.error == -ETIMEDOUT;  // counted; retried as unread
                co_return failed;
            }
            // e.g. the TLS handshake's own reason
            co_return unread(failure(502, "upstream_error", a.reason), obs::ReplayReason::connect_failed);
        }
        conn = std::move(a.conn);
    }
    ++conn->requests;
    const std::uint64_t started = shard.loop().now_ms();
    Attempt result;
    {
        // A half-closed client still gets its answer: only a failed client socket
        // cuts, and a FIN before the answer is under way gets the probe.
        ClientProbe probe(cs, rc, *conn->socket);
        StopWhenClientGone watch(cs, probe, ClientGoneAt::failure);
        result = co_await attempt_exchange(cs, rc, *conn, out, body, plan, deadline.at_ms, deadline.first_byte_cuts);
    }
    rc.upstream_ms += shard.loop().now_ms() - started;
    if (result.kind == Attempt::done)
        conn.give_back(result.upstream_reusable);
    else
        conn.discard();
    co_return result;
}

// The first exchange closed before answering (typically a pooled connection the
// upstream had dropped while idle) and the whole request is still at hand: it goes
// once more, on a new connection; always when the upstream provably did not read it,
// after it went out only when replay_after_read allows it. The replay is part of
// using a connection pool, not a retry: the same upstream, nothing answered, nothing
// reached the client; going elsewhere is the caller's choice (ForwardOutcome::retry,
// the gateway's channel loop).
bool replays_on_new_connection(const Attempt& a, const RequestContext& rc, const ServeSettings& st,
                               bool request_complete) noexcept {
    return a.kind == Attempt::stale && request_complete && (a.unread || replay_after_read(rc, st));
}

// A connection that closed before answering, replay or not: the client's 502.
Attempt closed_before_answer(const Attempt& stale) {
    Attempt closed = failure(502, "upstream_error", "upstream closed the connection before responding");
    closed.unread = stale.unread;
    closed.reason = stale.reason;
    return closed;
}

}  // namespace

void consume_head(ClientSession& cs, RequestContext& rc) noexcept {
    if (rc.head_consumed) return;
    cs.in.consume(rc.head.head_length);
    rc.head_consumed = true;  // rc.head's views are dead from here on
}

void capture_head(ClientSession& cs, RequestContext& rc, bool strip_client_auth, bool replace_body) {
    const http::RequestHead& h = rc.head;
    capture_request(rc.captured, h, cs.peer, rc.request_id, strip_client_auth, replace_body);
    rc.body_kind = h.body;
    rc.content_length = h.content_length;
    rc.version_minor = h.version_minor;
    rc.keep_alive = h.keep_alive;
    rc.expect_continue = h.expect_continue;
    const http::Method method = http::method_of(h.method);  // case-sensitive (RFC 9110 9.1)
    rc.is_head = method == http::Method::head;
    rc.idempotent = method == http::Method::get || method == http::Method::head || method == http::Method::put ||
                    method == http::Method::del || method == http::Method::options;
}

namespace {

ForwardOutcome answered(bool keep_alive) {
    ForwardOutcome o;
    o.keep_alive = keep_alive;
    return o;
}

ForwardOutcome retry_with(obs::ReplayReason reason, int upstream_status, int status, std::string_view code,
                          std::string message) {
    ForwardOutcome o;
    o.kind = ForwardOutcome::retry;
    o.replay_reason = reason;
    o.upstream_status = upstream_status;
    o.status = status;
    o.code = code;
    o.message = std::move(message);
    return o;
}

// Turns how the attempt ended into the forward's outcome: a relayed response as it
// is; a failure into a retry when allowed and nothing reached the client, else into
// the answer the client gets.
io::Task<ForwardOutcome> outcome_of_attempt(ClientSession& cs, RequestContext& rc, const ForwardPlan& plan,
                                            const Attempt& a, bool request_complete) {
    Shard& shard = cs.shard;
    const bool after_read = replay_after_read(rc, shard.settings());
    switch (a.kind) {
    case Attempt::done:
        co_return answered(a.client_keep_alive);
    case Attempt::refused:  // attempt_exchange hands one back only when it may go elsewhere
        co_return retry_with(a.reason, a.status, 502, "upstream_error", "upstream answered " + std::to_string(a.status));
    case Attempt::failed: {
        ForwardOutcome o;
        if (plan.retry_allowed && a.status != 408 && (a.unread || after_read || a.first_byte))
            o = retry_with(a.reason, 0, a.status, a.code, a.message);
        else if (rc.stream_started())
            o = answered(co_await end_stream_with_error(cs, rc, a.status, a.code, a.message));
        else if (rc.response_started())
            o = answered(false);
        else
            o = answered(co_await send_error(cs, rc, a.status, a.code, a.message, rc.keep_alive && request_complete));
        o.first_byte_timeout = a.first_byte;
        co_return o;
    }
    case Attempt::client_gone:
        ++shard.counters().client_aborts;
        if (rc.status == 0) rc.status = 499;  // nginx's "client closed request", for the log only
        co_return answered(false);
    case Attempt::stale:
    case Attempt::truncated:
        if (plan.retry_allowed && !rc.upstream_body_sent() && (a.unread || after_read))
            co_return retry_with(a.reason, 0, 502, "upstream_error", "upstream response was cut short");
        if (rc.stream_started() && !rc.upstream_body_sent())
            co_return answered(co_await end_stream_with_error(cs, rc, 502, "upstream_error", "upstream response was cut short"));
        if (rc.response_started()) co_return answered(false);  // the client sees the cut as a closed connection
        co_return answered(co_await send_error(cs, rc, 502, "upstream_error", "upstream response was cut short", false));
    }
    co_return answered(false);
}

}  // namespace

io::Task<ForwardOutcome> forward_request(ClientSession& cs, RequestContext& rc, const ForwardPlan& plan) {
    Shard& shard = cs.shard;
    const ServeSettings& st = shard.settings();
    consume_head(cs, rc);
    if (!plan.has_body_override && rc.body_kind == http::BodyKind::content_length && rc.content_length > st.max_body) {
        const std::string message = "request body is larger than " + std::to_string(st.max_body) + " bytes";
        co_return answered(co_await send_error(cs, rc, 413, "body_too_large", message, false));
    }

    std::string out = shard.buffers().take();
    const std::size_t override_length = plan.body_override.size();
    append_upstream_head(out, rc.captured, shard.pool().target(plan.target), plan.extra_headers, rc.body_kind,
                         plan.has_body_override ? &override_length : nullptr);
    BodyTracker body(plan.has_body_override ? http::BodyKind::none : rc.body_kind, rc.content_length, st.max_body);
    if (plan.has_body_override) {
        out.append(plan.body_override);
    } else {
        const std::size_t before = out.size();
        append_received_body(cs.in, body, out);
        rc.bytes_in += out.size() - before;
    }
    if (body.error() != http::Error::none) {
        shard.buffers().give(std::move(out));
        co_return answered(co_await send_error(cs, rc, http::status_for(body.error()), "bad_request",
                                               http::message_for(body.error()), false));
    }
    if (!body.done() && rc.expect_continue && cs.in.empty()) {
        static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
        if (co_await cs.socket->send(k100, shard.loop().now_ms() + st.stream_idle_timeout_ms) < 0) {
            shard.buffers().give(std::move(out));
            co_return answered(false);
        }
    }
    // Not a loop: one exchange, and at most one replay of it.
    const HeadDeadline deadline = head_deadline(shard, plan);  // one for both: the client waits once
    Attempt a = co_await exchange_once(cs, rc, plan, out, body, deadline, ConnChoice::idle_or_new);
    if (replays_on_new_connection(a, rc, st, body.done())) {
        ++shard.counters().upstream_retries;
        if (obs::ShardMetrics* m = shard.obs().metrics) m->count_upstream_replay(a.reason);
        a = co_await exchange_once(cs, rc, plan, out, body, deadline, ConnChoice::new_only);
    }
    if (a.kind == Attempt::stale) a = closed_before_answer(a);
    shard.buffers().give(std::move(out));
    co_return co_await outcome_of_attempt(cs, rc, plan, a, body.done());
}

}  // namespace rr::relay

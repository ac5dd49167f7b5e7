#include "ringrelay/relay/whole_body.hpp"

#include <cerrno>
#include <string>

#include "ringrelay/relay/body_tracker.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::relay {
namespace {

WholeBody refused(int status, std::string_view code, std::string message) {
    WholeBody r;
    r.kind = WholeBody::refused;
    r.status = status;
    r.code = code;
    r.message = std::move(message);
    return r;
}

WholeBody gone() {
    WholeBody r;
    r.kind = WholeBody::client_gone;
    return r;
}

}  // namespace

io::Task<WholeBody> read_whole_body(ClientSession& cs, RequestContext& rc, const WholeBodyLimits& limits,
                                    std::string& body) {
    io::Loop& loop = cs.shard.loop();
    if (rc.body_kind == http::BodyKind::content_length && rc.content_length > limits.max_bytes)
        co_return refused(413, "body_too_large",
                          limits.too_large.empty() ? "request body is larger than " + std::to_string(limits.max_bytes) + " bytes"
                                                   : std::string(limits.too_large));
    BodyTracker tracker(rc.body_kind, rc.content_length, limits.max_bytes);
    if (!tracker.done() && rc.expect_continue && cs.in.empty()) {
        static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
        if (co_await cs.socket->send(k100, loop.now_ms() + limits.idle_timeout_ms) < 0) co_return gone();
    }
    while (!tracker.done()) {
        if (cs.in.empty()) {
            const int r = co_await cs.socket->readable(loop.now_ms() + limits.idle_timeout_ms);
            if (r == -ETIMEDOUT) co_return refused(408, "request_timeout", "request body not received in time");
            if (r != io::Socket::kData) co_return gone();
            continue;
        }
        const std::size_t n = tracker.measure(cs.in.peek(), &body);
        if (const http::Error e = tracker.error(); e != http::Error::none)
            co_return refused(http::status_for(e), e == http::Error::body_too_large ? "body_too_large" : "bad_request",
                              std::string(http::message_for(e)));
        cs.in.consume(n);
        rc.bytes_in += n;
    }
    co_return WholeBody{};
}

}  // namespace rr::relay

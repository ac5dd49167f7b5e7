#include "ringrelay/relay/early_stream.hpp"

#include <cstdio>
#include <string>

#include "ringrelay/relay/replies.hpp"
#include "ringrelay/relay/session.hpp"

namespace rr::relay {

bool anthropic_stream(std::string_view path) noexcept { return path.starts_with("/v1/messages"); }

void append_stream_piece(std::string& out, const RequestContext& rc, std::string_view payload) {
    if (payload.empty()) return;
    if (rc.version_minor == 0) {
        out.append(payload);
        return;
    }
    char size[20];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
    out.append(size, static_cast<std::size_t>(n)).append(payload).append("\r\n");
}

std::string_view stream_terminator(const RequestContext& rc) noexcept {
    return rc.version_minor == 0 ? std::string_view() : std::string_view("0\r\n\r\n");
}

namespace {

io::Task<int> send_owned(ClientSession& cs, RequestContext& rc, std::string& out) {
    Shard& shard = cs.shard;
    const int s = co_await cs.socket->send(out, shard.loop().now_ms() + shard.settings().stream_idle_timeout_ms);
    rc.bytes_out += out.size();
    co_return s;
}

}  // namespace

io::Task<int> start_early_stream(ClientSession& cs, RequestContext& rc) {
    std::string out = cs.shard.buffers().take();
    out.append("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Request-Id: ");
    out.append(rc.request_id).append("\r\n");
    out.append(rc.version_minor == 0 ? "Connection: close\r\n" : "Transfer-Encoding: chunked\r\n");
    out.append("\r\n");
    rc.saw_early_stream_head();
    rc.status = 200;
    const int s = co_await send_owned(cs, rc, out);
    cs.shard.buffers().give(std::move(out));
    co_return s;
}

io::Task<int> send_stream_ping(ClientSession& cs, RequestContext& rc) {
    std::string out = cs.shard.buffers().take();
    append_stream_piece(out, rc,
                        anthropic_stream(rc.captured.line.substr(rc.captured.method_len + 1))
                            ? std::string_view("event: ping\ndata: {\"type\": \"ping\"}\n\n")
                            : std::string_view(": ping\n\n"));
    const int s = co_await send_owned(cs, rc, out);
    cs.shard.buffers().give(std::move(out));
    co_return s;
}

io::Task<bool> end_stream_with_error(ClientSession& cs, RequestContext& rc, int status, std::string_view code,
                                     std::string_view message) {
    std::string event = "event: error\ndata: ";
    event += error_body(code, message);
    event += "\n\n";
    std::string out = cs.shard.buffers().take();
    append_stream_piece(out, rc, event);
    out.append(stream_terminator(rc));
    rc.error_code = code;
    rc.status = status;  // what the log says went wrong; the client saw 200 + the event
    const int s = co_await send_owned(cs, rc, out);
    cs.shard.buffers().give(std::move(out));
    co_return s == 0 && rc.version_minor != 0 && rc.keep_alive;
}

}  // namespace rr::relay

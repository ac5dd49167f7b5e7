// read_head and HeadScan: a head that arrives in pieces is parsed in linear work.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "ringrelay/relay/head_reader.hpp"
#include "ringrelay/relay/head_scan.hpp"
#include "ringrelay/io/loop.hpp"
#include "support/tcp_pair.hpp"

using namespace rr;

namespace {

// A request head of about 60 KiB (under the 64 KiB limit, under 100 fields).
std::string big_head() {
    std::string h = "GET /v1/models HTTP/1.1\r\nHost: relay.test\r\n";
    for (int i = 0; h.size() < 60 * 1024; ++i)
        h += "X-Pad-" + std::to_string(i) + ": " + std::string(700, 'a' + i % 26) + "\r\n";
    return h + "\r\n";
}

}  // namespace

TEST_CASE("a head trickled in small pieces is parsed in linear work, not once per piece from its start") {
    io::Loop loop;
    auto [server, client] = rr::test::tcp_pair({.nodelay = true});
    auto* sock = new io::Socket(loop, server);
    sock->start_receiving();
    const std::string head = big_head();
    std::thread writer([fd = client, &head] {
        for (std::size_t off = 0; off < head.size(); off += 16) {
            const std::size_t n = std::min<std::size_t>(16, head.size() - off);
            REQUIRE(::write(fd, head.data() + off, n) == static_cast<ssize_t>(n));
            // Pace the trickle so the pieces arrive as separate receives.
            std::this_thread::sleep_for(std::chrono::microseconds(30));
        }
    });
    std::size_t parsed_bytes = 0;
    relay::HeadOutcome outcome = relay::HeadOutcome::failed;
    std::size_t head_length = 0;
    spawn([](io::Loop& l, io::Socket* s, std::size_t& work, relay::HeadOutcome& out, std::size_t& len) -> io::Task<void> {
        relay::Inbound in(s);
        http::RequestHead h;
        const relay::HeadRead hr = co_await relay::read_head(
            in,
            [&](std::string_view b) {
                work += b.size();
                return http::parse_request(b, h);
            },
            l.now_ms() + 20000);
        out = hr.outcome;
        len = h.head_length;
        s->close_and_destroy();
        l.stop();
    }(loop, sock, parsed_bytes, outcome, head_length));
    loop.run();
    writer.join();
    loop.drain_sockets(2000);
    close(client);
    CHECK(outcome == relay::HeadOutcome::complete);
    CHECK(head_length == head.size());
    // The head came in many receives (else this test would prove nothing)...
    REQUIRE(loop.stats().cqes > 200);
    // ...yet the parser saw each byte about twice at most, not once per receive.
    CHECK(parsed_bytes <= 3 * head.size());
}

TEST_CASE("HeadScan: a head fed a byte at a time is searched once per byte and parsed a logarithmic number of times") {
    const std::string head = big_head();
    relay::HeadScan scan;
    std::size_t parses = 0, parsed_bytes = 0;
    for (std::size_t n = 1; n <= head.size(); ++n) {
        if (scan.should_parse(std::string_view(head).substr(0, n))) {
            ++parses;
            parsed_bytes += n;
        }
    }
    CHECK(scan.end_search_bytes() <= 4 * head.size());
    CHECK(parses <= 24);  // doublings (~16), the 8 KiB line limit, and the end
    CHECK(parsed_bytes <= 3 * head.size());
}

TEST_CASE("HeadScan: the parser looks as soon as the end arrives, and as soon as a limit is crossed") {
    relay::HeadScan scan;
    std::string b = "GET / HTTP/1.1\r\nHost: a\r\n";
    CHECK(scan.should_parse(b));  // the first look always parses
    b += "X: 1\r\n";
    CHECK_FALSE(scan.should_parse(b));
    b += "\r";
    CHECK_FALSE(scan.should_parse(b));
    b += "\n";  // CRLF CRLF split across pieces
    CHECK(scan.should_parse(b));

    relay::HeadScan line;
    std::string l = "GET /" + std::string(5000, 'a');
    CHECK(line.should_parse(l));
    l += std::string(3192, 'a');  // 8197 bytes, over the 8192-byte request-line limit
    CHECK(line.should_parse(l));  // crossed the request-line limit: 414 is decided now
    l += "a";
    CHECK_FALSE(line.should_parse(l));
}

// The gateway overwrites the API secret in the receive buffer once it is hashed: the
// buffer goes back to the shard's pool, and a core dump must not show live keys.
TEST_CASE("Inbound::wipe overwrites a secret in the received head, in the pooled buffer itself") {
    io::Loop loop;
    auto [server, client] = rr::test::tcp_pair({.nodelay = true});
    auto* sock = new io::Socket(loop, server);
    sock->start_receiving();
    const std::string secret = "rr-0123456789abcdefghijABCDEFGHIJ0123456789";
    const std::string head = "GET /v1/models HTTP/1.1\r\nHost: relay.test\r\nAuthorization: Bearer " + secret + "\r\n\r\n";
    REQUIRE(::write(client, head.data(), head.size()) == static_cast<ssize_t>(head.size()));
    const char* where = nullptr;
    std::string after_wipe;
    spawn([](io::Loop& l, io::Socket* s, const std::string& key, const char*& at, std::string& seen) -> io::Task<void> {
        relay::Inbound in(s);
        http::RequestHead h;
        const relay::HeadRead hr =
            co_await relay::read_head(in, [&](std::string_view b) { return http::parse_request(b, h); }, l.now_ms() + 20000);
        if (hr.outcome == relay::HeadOutcome::complete) {
            const std::string_view value = h.authorization.substr(7);  // "Bearer "
            at = value.data();
            in.wipe(value);
            seen.assign(at, key.size());  // still the ring buffer's memory (not yet recycled)
            in.wipe(key);                 // a view outside the buffer: left alone, no crash
            in.consume(h.head_length);
        }
        s->close_and_destroy();
        l.stop();
    }(loop, sock, secret, where, after_wipe));
    loop.run();
    loop.drain_sockets(2000);
    close(client);
    REQUIRE(where != nullptr);
    CHECK(after_wipe == std::string(secret.size(), '\0'));
    CHECK(secret == "rr-0123456789abcdefghijABCDEFGHIJ0123456789");
}

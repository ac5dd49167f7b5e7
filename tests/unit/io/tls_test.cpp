// TlsSession on io::Socket against the real kernel: a TCP pair on loopback, both
// ends in one io_uring loop, the test certificates of tests/data/tls (a test CA,
// a server certificate for localhost and 127.0.0.1, an unrelated CA), and for SNI,
// reloads and resumption certificates made at test time with the openssl tool.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/io/tls.hpp"
#include "support/tcp_pair.hpp"

using namespace rr::io;

namespace {

const std::string kData = RR_TLS_TEST_DATA;

struct Files {
    std::string ca = kData + "/ca.pem";
    std::string other_ca = kData + "/other-ca.pem";
    std::string cert = kData + "/server.pem";
    std::string key = kData + "/server.key";
} const files;

TlsClientOptions trusting(const std::string& ca) {
    TlsClientOptions o;
    o.ca_file = ca;
    o.use_system_cas = false;
    return o;
}

std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 13 + seed) % 26);
    return s;
}

// Runs body on loop until it returns (the loop stops then), or fails after 20 s.
// A Loop runs once: each test is one body.
void run(Loop& loop, Task<void> body) {
    struct Guard : Timer {
        explicit Guard(Loop* l) : Timer([](Timer* t) { static_cast<Guard*>(t)->loop->stop(); }), loop(l) {}
        Loop* loop;
    } guard(&loop);
    bool finished = false;
    loop.timers().arm(guard, loop.now_ms() + 20000);
    spawn([](Loop& l, Task<void> t, bool& done) -> Task<void> {
        co_await std::move(t);
        done = true;
        l.stop();
    }(loop, std::move(body), finished));
    loop.run();
    loop.timers().cancel(guard);
    REQUIRE(finished);
}

// Runs tasks concurrently; co_await join.wait() resumes once all have returned.
class Join {
public:
    void start(Task<void> t) {
        ++left_;
        spawn(wrap(std::move(t)));
    }
    auto wait() noexcept {
        struct Awaiter {
            Join& j;
            bool await_ready() const noexcept { return j.left_ == 0; }
            void await_suspend(std::coroutine_handle<> h) noexcept { j.waiter_ = h; }
            void await_resume() const noexcept {}
        };
        return Awaiter{*this};
    }

private:
    Task<void> wrap(Task<void> t) {
        co_await std::move(t);
        if (--left_ == 0 && waiter_) std::exchange(waiter_, nullptr).resume();
    }
    int left_ = 0;
    std::coroutine_handle<> waiter_;
};

// Lets closed sockets get their last CQEs, so they free themselves before the loop ends.
Task<void> settle(Loop& loop) { co_await SleepUntil(loop, loop.now_ms() + 20); }

// A TLS socket on fd, receiving.
Socket* tls_socket(Loop& loop, int fd, std::unique_ptr<TlsSession> session) {
    REQUIRE(session != nullptr);
    auto* s = new Socket(loop, fd);
    s->attach_tls(std::move(session));
    s->start_receiving();
    return s;
}

// Reads until `into` holds n bytes, or the socket says something else than kData.
// Returns the last readable() state (kData when n bytes arrived).
Task<int> read_exactly(Loop& loop, Socket* s, std::size_t n, std::string& into) {
    while (into.size() < n) {
        const int st = co_await s->readable(loop.now_ms() + 5000);
        if (st != Socket::kData) co_return st;
        const std::string_view f = s->front();
        const std::size_t take = std::min(f.size(), n - into.size());
        into.append(f.substr(0, take));
        s->consume(take);
    }
    co_return Socket::kData;
}

Task<void> handshake(Socket* s, std::uint64_t deadline, int& rc) { rc = co_await tls_handshake(*s, deadline); }

// Both ends of a TLS connection over loopback.
struct TlsPair {
    Loop loop;
    TlsServerContext server_ctx{files.cert, files.key};
    TlsClientContext client_ctx{trusting(files.ca)};
    Socket* server = nullptr;
    Socket* client = nullptr;
    int server_fd = -1;
    int client_fd = -1;
    int server_rc = 1;
    int client_rc = 1;

    // Handshakes both ends concurrently; the results land in server_rc / client_rc.
    Task<void> connect(std::string_view host = "localhost") {
        std::tie(server_fd, client_fd) = rr::test::tcp_pair({.nonblocking = true});
        server = tls_socket(loop, server_fd, TlsSession::server(server_ctx));
        client = tls_socket(loop, client_fd, TlsSession::client(client_ctx, host));
        Join both;
        both.start(handshake(server, loop.now_ms() + 5000, server_rc));
        both.start(handshake(client, loop.now_ms() + 5000, client_rc));
        co_await both.wait();
    }
    Task<void> close_both() {
        if (server) server->close_and_destroy();
        if (client) client->close_and_destroy();
        server = client = nullptr;
        co_await settle(loop);
    }
};

}  // namespace

TEST_CASE("a client and a server complete a TLS 1.3 handshake and exchange data both ways") {
    TlsPair p;
    std::string at_server, at_client;
    int server_state = 0, client_state = 0;
    std::size_t queued_after = 99;
    run(p.loop, [&]() -> Task<void> {
        co_await p.connect("localhost");
        REQUIRE(p.server_rc == 0);
        REQUIRE(p.client_rc == 0);
        Join both;
        // Named: a coroutine lambda must outlive its coroutine.
        auto side1 = [&]() -> Task<void> {
            server_state = co_await read_exactly(p.loop, p.server, 4, at_server);
            queued_after = p.server->queued_bytes();
            CHECK(co_await p.server->send("pong!", p.loop.now_ms() + 5000) == 0);
        };
        both.start(side1());
        // Named: a coroutine lambda must outlive its coroutine.
        auto side2 = [&]() -> Task<void> {
            CHECK(co_await p.client->send("ping", p.loop.now_ms() + 5000) == 0);
            client_state = co_await read_exactly(p.loop, p.client, 5, at_client);
        };
        both.start(side2());
        co_await both.wait();
        CHECK(p.client->tls()->handshake_done());
        CHECK(p.client->tls()->protocol() == "TLSv1.3");
        CHECK(p.client->tls()->alpn() == "http/1.1");
        CHECK(p.server->tls()->alpn() == "http/1.1");
        CHECK(p.server->tls()->is_server());
        CHECK_FALSE(p.server->has_data());
        co_await p.close_both();
    }());
    CHECK(server_state == Socket::kData);
    CHECK(client_state == Socket::kData);
    CHECK(at_server == "ping");
    CHECK(at_client == "pong!");
    CHECK(queued_after == 0);  // only plaintext counts, and it was all consumed
    CHECK(p.loop.buffers().in_use() == 0);
}

TEST_CASE("multi-MiB transfers arrive whole both ways and a slow reader holds back the sender") {
    TlsPair p;
    const std::string up = pattern(6 << 20, 1);
    const std::string down = pattern(3 << 20, 2);
    std::string at_server, at_client;
    std::size_t peak_plain = 0;
    unsigned peak_buffers = 0;
    int sent_up = 1, sent_down = 1, st_server = 0, st_client = 0;
    run(p.loop, [&]() -> Task<void> {
        co_await p.connect();
        REQUIRE(p.client_rc == 0);
        REQUIRE(p.server_rc == 0);
        Join both;
        // Client: one 6 MiB send (encrypted a chunk at a time), then read 3 MiB.
        // Named: a coroutine lambda must outlive its coroutine.
        auto side3 = [&]() -> Task<void> {
            sent_up = co_await p.client->send(up, p.loop.now_ms() + 15000);
            st_client = co_await read_exactly(p.loop, p.client, down.size(), at_client);
        };
        both.start(side3());
        // Server: read slowly, watching how much plaintext waits; answer in 100 kB sends.
        // Named: a coroutine lambda must outlive its coroutine.
        auto side4 = [&]() -> Task<void> {
            std::size_t reads = 0;
            while (at_server.size() < up.size()) {
                st_server = co_await p.server->readable(p.loop.now_ms() + 5000);
                if (st_server != Socket::kData) co_return;
                peak_plain = std::max(peak_plain, p.server->queued_bytes());
                peak_buffers = std::max(peak_buffers, p.loop.buffers().in_use());
                const std::string_view f = p.server->front();
                at_server.append(f);
                p.server->consume(f.size());
                if (++reads % 16 == 0) co_await SleepUntil(p.loop, p.loop.now_ms() + 1);
            }
            for (std::size_t off = 0; off < down.size(); off += 100000) {
                sent_down = co_await p.server->send(std::string_view(down).substr(off, 100000),
                                                    p.loop.now_ms() + 15000);
                if (sent_down != 0) co_return;
            }
        };
        both.start(side4());
        co_await both.wait();
        co_await p.close_both();
    }());
    CHECK(sent_up == 0);
    CHECK(sent_down == 0);
    CHECK(st_server == Socket::kData);
    CHECK(st_client == Socket::kData);
    CHECK(at_server.size() == up.size());
    CHECK((at_server == up));
    CHECK((at_client == down));
    // Decryption stops at its mark (plus at most one record) instead of draining the ring.
    CHECK(peak_plain >= TlsSession::kPlainHighWater);
    CHECK(peak_plain <= TlsSession::kPlainHighWater + 16 * 1024);
    CHECK(peak_buffers < p.loop.buffers().count());
    CHECK(p.loop.buffers().in_use() == 0);
}

TEST_CASE("a plaintext view stays valid while more data is decrypted behind it") {
    TlsPair p;
    const std::string first = pattern(1000, 3);
    const std::string more = pattern(200000, 4);
    bool view_intact = false;
    std::size_t queued_while_held = 0;
    std::string all;
    run(p.loop, [&]() -> Task<void> {
        co_await p.connect();
        REQUIRE(p.client_rc == 0);
        Join both;
        // Named: a coroutine lambda must outlive its coroutine.
        auto side5 = [&]() -> Task<void> {
            CHECK(co_await p.client->send(first, p.loop.now_ms() + 5000) == 0);
            co_await SleepUntil(p.loop, p.loop.now_ms() + 30);
            CHECK(co_await p.client->send(more, p.loop.now_ms() + 5000) == 0);
        };
        both.start(side5());
        // Named: a coroutine lambda must outlive its coroutine.
        auto side6 = [&]() -> Task<void> {
            REQUIRE(co_await p.server->readable(p.loop.now_ms() + 5000) == Socket::kData);
            const std::string_view view = p.server->front();
            const std::string copy(view);
            // Hold the view across an await while the second send arrives and is decrypted.
            co_await SleepUntil(p.loop, p.loop.now_ms() + 150);
            queued_while_held = p.server->queued_bytes();
            view_intact = view == copy && copy == std::string_view(first).substr(0, copy.size());
            CHECK(co_await read_exactly(p.loop, p.server, first.size() + more.size(), all) == Socket::kData);
        };
        both.start(side6());
        co_await both.wait();
        co_await p.close_both();
    }());
    CHECK(view_intact);
    CHECK(queued_while_held > first.size());
    CHECK((all == first + more));
}

TEST_CASE("close_notify from the peer reads as EOF after the data before it") {
    TlsPair p;
    std::string got;
    int after = 99;
    bool closed = false, clean = false;
    run(p.loop, [&]() -> Task<void> {
        co_await p.connect();
        REQUIRE(p.client_rc == 0);
        CHECK(co_await p.client->send("bye", p.loop.now_ms() + 5000) == 0);
        p.client->close_and_destroy();  // sends close_notify, then FIN
        p.client = nullptr;
        CHECK(co_await read_exactly(p.loop, p.server, 3, got) == Socket::kData);
        after = co_await p.server->readable(p.loop.now_ms() + 5000);
        closed = p.server->peer_closed();
        clean = p.server->tls()->close_notify_received();
        co_await p.close_both();
    }());
    CHECK(got == "bye");
    CHECK(after == Socket::kEof);
    CHECK(closed);
    CHECK(clean);
}

TEST_CASE("a TCP close without close_notify also ends reading, without the clean-close flag") {
    TlsPair p;
    std::string got;
    int after = 99;
    bool clean = true;
    run(p.loop, [&]() -> Task<void> {
        co_await p.connect();
        REQUIRE(p.client_rc == 0);
        CHECK(co_await p.client->send("half", p.loop.now_ms() + 5000) == 0);
        ::shutdown(p.client_fd, SHUT_WR);  // FIN straight from the kernel: no close_notify
        CHECK(co_await read_exactly(p.loop, p.server, 4, got) == Socket::kData);
        after = co_await p.server->readable(p.loop.now_ms() + 5000);
        clean = p.server->tls()->close_notify_received();
        co_await p.close_both();
    }());
    CHECK(got == "half");
    CHECK(after == Socket::kEof);
    CHECK_FALSE(clean);
}

TEST_CASE("a certificate from a CA the client does not trust fails the handshake on both sides") {
    Loop loop;
    TlsServerContext server_ctx(files.cert, files.key);
    TlsClientContext client_ctx(trusting(files.other_ca));
    int src = 1, crc = 1, read_after = 0, send_after = 0;
    std::string client_reason, server_reason;
    bool done = true;
    run(loop, [&]() -> Task<void> {
        auto [sfd, cfd] = rr::test::tcp_pair({.nonblocking = true});
        Socket* server = tls_socket(loop, sfd, TlsSession::server(server_ctx));
        Socket* client = tls_socket(loop, cfd, TlsSession::client(client_ctx, "localhost"));
        Join both;
        both.start(handshake(server, loop.now_ms() + 5000, src));
        both.start(handshake(client, loop.now_ms() + 5000, crc));
        co_await both.wait();
        read_after = co_await client->readable(loop.now_ms() + 1000);
        send_after = co_await client->send("x", loop.now_ms() + 1000);
        client_reason = client->tls()->error_text();
        server_reason = server->tls()->error_text();
        done = client->tls()->handshake_done();
        server->close_and_destroy();
        client->close_and_destroy();
        co_await settle(loop);
    }());
    MESSAGE("client: ", client_reason);
    MESSAGE("server: ", server_reason);
    CHECK(crc == -EPROTO);
    CHECK(src < 0);
    CHECK(read_after == -EPROTO);
    CHECK(send_after < 0);
    CHECK(client_reason.find("certificate verify failed") != std::string::npos);
    CHECK(server_reason.find("unknown_ca") != std::string::npos);
    CHECK_FALSE(done);
}

TEST_CASE("the certificate must name the host asked for: DNS name or IP address") {
    struct Case {
        std::string host;
        bool ok;
    };
    for (const Case& c : {Case{"localhost", true}, Case{"127.0.0.1", true}, Case{"[127.0.0.1]", true},
                         Case{"example.com", false}, Case{"127.0.0.2", false}}) {
        CAPTURE(c.host);
        TlsPair p;
        std::string reason;
        run(p.loop, [&]() -> Task<void> {
            co_await p.connect(c.host);
            reason = p.client->tls()->error_text();
            co_await p.close_both();
        }());
        if (c.ok) {
            CHECK(p.client_rc == 0);
            CHECK(p.server_rc == 0);
            CHECK(reason.empty());
        } else {
            MESSAGE(c.host, ": ", reason);
            CHECK(p.client_rc == -EPROTO);
            CHECK(p.server_rc < 0);
            CHECK_FALSE(reason.empty());
        }
    }
}

TEST_CASE("a peer that never answers times the handshake out") {
    Loop loop;
    TlsClientContext client_ctx(trusting(files.ca));
    int rc = 1;
    std::uint64_t took = 0;
    std::string reason;
    run(loop, [&]() -> Task<void> {
        auto [sfd, cfd] = rr::test::tcp_pair({.nonblocking = true});  // the server end stays silent
        Socket* client = tls_socket(loop, cfd, TlsSession::client(client_ctx, "localhost"));
        const std::uint64_t start = loop.now_ms();
        rc = co_await tls_handshake(*client, start + 100);
        took = loop.now_ms() - start;
        reason = client->tls()->error_text();
        client->close_and_destroy();
        co_await settle(loop);
        close(sfd);
    }());
    CHECK(rc == -ETIMEDOUT);
    CHECK(took >= 100);
    CHECK(reason == "TLS handshake timed out");
}

TEST_CASE("plain HTTP sent to a TLS server fails its handshake") {
    Loop loop;
    TlsServerContext server_ctx(files.cert, files.key);
    int rc = 1;
    std::string reason;
    run(loop, [&]() -> Task<void> {
        auto [sfd, cfd] = rr::test::tcp_pair({.nonblocking = true});
        Socket* server = tls_socket(loop, sfd, TlsSession::server(server_ctx));
        const char request[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        REQUIRE(::write(cfd, request, sizeof request - 1) == static_cast<ssize_t>(sizeof request - 1));
        rc = co_await tls_handshake(*server, loop.now_ms() + 5000);
        reason = server->tls()->error_text();
        server->close_and_destroy();
        co_await settle(loop);
        close(cfd);
    }());
    MESSAGE("server: ", reason);
    CHECK(rc == -EPROTO);
    CHECK_FALSE(reason.empty());
}

TEST_CASE("a peer hanging up mid-handshake ends it with a connection error") {
    Loop loop;
    TlsClientContext client_ctx(trusting(files.ca));
    int rc = 1;
    std::string reason;
    run(loop, [&]() -> Task<void> {
        auto [sfd, cfd] = rr::test::tcp_pair({.nonblocking = true});
        Socket* client = tls_socket(loop, cfd, TlsSession::client(client_ctx, "localhost"));
        Join both;
        both.start(handshake(client, loop.now_ms() + 5000, rc));
        // The "server" lets the ClientHello arrive and hangs up without a word.
        co_await SleepUntil(loop, loop.now_ms() + 30);
        close(sfd);
        co_await both.wait();
        reason = client->tls()->error_text();
        client->close_and_destroy();
        co_await settle(loop);
    }());
    MESSAGE("client: ", reason);
    CHECK((rc == -ECONNRESET || rc == -EPIPE));
    CHECK_FALSE(reason.empty());
}

TEST_CASE("sending before the handshake is refused and the session is still freed") {
    Loop loop;
    TlsServerContext server_ctx(files.cert, files.key);
    int rc = 1;
    run(loop, [&]() -> Task<void> {
        auto [sfd, cfd] = rr::test::tcp_pair({.nonblocking = true});
        Socket* server = tls_socket(loop, sfd, TlsSession::server(server_ctx));
        rc = co_await server->send("too early", loop.now_ms() + 1000);
        server->close_and_destroy();
        co_await settle(loop);
        close(cfd);
    }());
    CHECK(rc == -ENOTCONN);
}

TEST_CASE("contexts refuse unreadable or mismatched files with a message naming them") {
    auto message_of = [](auto make) -> std::string {
        try {
            make();
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "(no error)";
    };
    const std::string missing = kData + "/no-such-file.pem";
    std::string m = message_of([&] { TlsServerContext c(missing, files.key); });
    CHECK(m.find(missing) != std::string::npos);
    CHECK(m.find("No such file") != std::string::npos);
    m = message_of([&] { TlsServerContext c(files.cert, files.cert); });
    CHECK(m.find("cannot load TLS key " + files.cert) != std::string::npos);
    m = message_of([&] { TlsServerContext c(files.key, files.key); });
    CHECK(m.find("cannot load TLS certificate " + files.key) != std::string::npos);
    m = message_of([&] { TlsServerContext c(files.ca, files.key); });
    CHECK(m.find("does not belong") != std::string::npos);
    m = message_of([&] { TlsClientContext c(trusting(missing)); });
    CHECK(m.find("cannot read upstream CA file " + missing) != std::string::npos);
    m = message_of([&] { TlsClientContext c(trusting(files.key)); });
    CHECK(m.find("cannot load upstream CA file " + files.key) != std::string::npos);
    CHECK(message_of([&] { TlsClientContext c(trusting(files.ca)); }) == "(no error)");
}

// ---- several certificates, reloads, tickets, resumption ---------------------------

namespace {

// A CA and server certificates made by the openssl tool in a temp dir, removed after.
class MadeCertificates {
public:
    MadeCertificates() {
        char tmpl[] = "/tmp/rr-tls-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        sh("openssl ecparam -name prime256v1 -genkey -noout -out ca.key && "
           "openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=made CA' "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out ca.pem");
    }
    ~MadeCertificates() { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    MadeCertificates(const MadeCertificates&) = delete;
    MadeCertificates& operator=(const MadeCertificates&) = delete;

    std::string ca() const { return dir_ + "/ca.pem"; }
    std::string path(const std::string& file) const { return dir_ + "/" + file; }

    // A certificate for san ("DNS:a.test,IP:127.0.0.1") signed by the CA, written
    // to <stem>.pem and <stem>.key (replacing what was there).
    TlsCertificateFiles make(const std::string& stem, const std::string& san) const {
        sh("openssl ecparam -name prime256v1 -genkey -noout -out " + stem + ".ec && "
           "openssl pkcs8 -topk8 -nocrypt -in " + stem + ".ec -out " + stem + ".key.new && "
           "openssl req -new -key " + stem + ".key.new -subj '/CN=" + stem + "' -out " + stem + ".csr && "
           "printf 'basicConstraints=critical,CA:FALSE\\nsubjectAltName=" + san + "\\n' > " + stem + ".ext && "
           "openssl x509 -req -in " + stem + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 2 "
           "-extfile " + stem + ".ext -out " + stem + ".pem.new && "
           "mv " + stem + ".pem.new " + stem + ".pem && mv " + stem + ".key.new " + stem + ".key");
        return {path(stem + ".pem"), path(stem + ".key")};
    }

private:
    void sh(const std::string& cmd) const {
        const std::string full = "cd '" + dir_ + "' && (" + cmd + ") >/dev/null 2>&1";
        REQUIRE_MESSAGE(std::system(full.c_str()) == 0, cmd);
    }
    std::string dir_;
};

// One TLS connection between the two contexts over loopback, both ends open.
struct Connection {
    Socket* server = nullptr;
    Socket* client = nullptr;
    int server_rc = 1;
    int client_rc = 1;
    bool ok() const { return server_rc == 0 && client_rc == 0; }
};

Task<Connection> open_connection(Loop& loop, const TlsServerContext& sctx, const TlsClientContext& cctx,
                                 std::string_view host, std::string_view resume_key = {}) {
    Connection c;
    const auto [sfd, cfd] = rr::test::tcp_pair({.nonblocking = true});
    c.server = tls_socket(loop, sfd, TlsSession::server(sctx));
    c.client = tls_socket(loop, cfd, TlsSession::client(cctx, host, resume_key));
    Join both;
    both.start(handshake(c.server, loop.now_ms() + 5000, c.server_rc));
    both.start(handshake(c.client, loop.now_ms() + 5000, c.client_rc));
    co_await both.wait();
    co_return c;
}

// A request and an answer: proves the connection carries data (and, in TLS 1.3,
// lets the client take in the ticket the server sent after the handshake).
Task<bool> ping_pong(Loop& loop, Connection& c) {
    std::string at_server, at_client;
    if (co_await c.client->send("ping", loop.now_ms() + 5000) != 0) co_return false;
    if (co_await read_exactly(loop, c.server, 4, at_server) != Socket::kData) co_return false;
    if (co_await c.server->send("pong", loop.now_ms() + 5000) != 0) co_return false;
    if (co_await read_exactly(loop, c.client, 4, at_client) != Socket::kData) co_return false;
    co_return at_server == "ping" && at_client == "pong";
}

Task<void> close_connection(Loop& loop, Connection& c) {
    if (c.server) c.server->close_and_destroy();
    if (c.client) c.client->close_and_destroy();
    c.server = c.client = nullptr;
    co_await settle(loop);
}

// Opens a connection, checks it carries data, closes it; the client's view of it.
struct Outcome {
    bool ok = false;
    bool client_resumed = false;
    bool server_resumed = false;
    std::string server_name;
};
Task<Outcome> one_exchange(Loop& loop, const TlsServerContext& sctx, const TlsClientContext& cctx,
                           std::string_view host, std::string_view resume_key = {}) {
    Connection c = co_await open_connection(loop, sctx, cctx, host, resume_key);
    Outcome o;
    o.ok = c.ok() && co_await ping_pong(loop, c);
    if (c.ok()) {
        o.client_resumed = c.client->tls()->resumed();
        o.server_resumed = c.server->tls()->resumed();
        o.server_name = std::string(c.server->tls()->server_name());
    }
    co_await close_connection(loop, c);
    co_return o;
}

}  // namespace

TEST_CASE("SNI picks the certificate of the name asked for; the first answers no or unknown names") {
    MadeCertificates made;
    const TlsCertificateFiles fallback = made.make("default", "DNS:localhost,IP:127.0.0.1");
    const TlsCertificateFiles alpha = made.make("alpha", "DNS:alpha.test");
    const TlsCertificateFiles beta = made.make("beta", "DNS:*.beta.test");
    TlsServerContext sctx({fallback, alpha, beta});
    TlsClientContext cctx(trusting(made.ca()));
    CHECK(sctx.server_names() ==
          std::vector<std::string>{"default", "localhost", "alpha.test", "*.beta.test"});
    Loop loop;
    Outcome by_alpha, by_wildcard, by_case, by_ip, by_localhost, unknown, too_deep;
    run(loop, [&]() -> Task<void> {
        // The client checks the certificate against the name: each success proves
        // which certificate the server chose.
        by_alpha = co_await one_exchange(loop, sctx, cctx, "alpha.test");
        by_wildcard = co_await one_exchange(loop, sctx, cctx, "x.beta.test");
        by_case = co_await one_exchange(loop, sctx, cctx, "ALPHA.Test");
        by_ip = co_await one_exchange(loop, sctx, cctx, "127.0.0.1");  // no SNI at all
        by_localhost = co_await one_exchange(loop, sctx, cctx, "localhost");
        unknown = co_await one_exchange(loop, sctx, cctx, "unknown.test");
        too_deep = co_await one_exchange(loop, sctx, cctx, "a.b.beta.test");
    }());
    CHECK(by_alpha.ok);
    CHECK(by_alpha.server_name == "alpha.test");
    CHECK(by_wildcard.ok);
    CHECK(by_case.ok);
    CHECK(by_ip.ok);
    CHECK(by_ip.server_name.empty());
    CHECK(by_localhost.ok);
    CHECK_FALSE(unknown.ok);   // the default certificate (localhost) answered it
    CHECK_FALSE(too_deep.ok);  // a wildcard covers one label only
    CHECK(loop.buffers().in_use() == 0);
}

TEST_CASE("a reload serves new handshakes with the new certificate; open connections keep working") {
    MadeCertificates made;
    const TlsCertificateFiles files = made.make("site", "DNS:old.test");
    TlsServerContext sctx(files.cert_file, files.key_file);
    TlsClientContext cctx(trusting(made.ca()));
    Loop loop;
    bool open_before = false, old_name_before = false, new_name_before = true;
    bool open_after_reload = false, old_name_after = true, new_name_after = false;
    bool after_bad_reload = false, open_after_bad = false;
    std::string reload_error = "(not run)", bad_error;
    std::uint64_t generation_after = 0, generation_after_bad = 0;
    run(loop, [&]() -> Task<void> {
        Connection established = co_await open_connection(loop, sctx, cctx, "old.test");
        open_before = established.ok() && co_await ping_pong(loop, established);
        old_name_before = (co_await one_exchange(loop, sctx, cctx, "old.test")).ok;
        new_name_before = (co_await one_exchange(loop, sctx, cctx, "new.test")).ok;

        made.make("site", "DNS:new.test");  // the renewed certificate, same files
        reload_error = sctx.reload();
        generation_after = sctx.generation();
        open_after_reload = co_await ping_pong(loop, established);
        old_name_after = (co_await one_exchange(loop, sctx, cctx, "old.test")).ok;
        new_name_after = (co_await one_exchange(loop, sctx, cctx, "new.test")).ok;

        std::ofstream(files.cert_file, std::ios::trunc) << "not a certificate\n";
        bad_error = sctx.reload();
        generation_after_bad = sctx.generation();
        after_bad_reload = (co_await one_exchange(loop, sctx, cctx, "new.test")).ok;
        open_after_bad = co_await ping_pong(loop, established);
        co_await close_connection(loop, established);
    }());
    CHECK(open_before);
    CHECK(old_name_before);
    CHECK_FALSE(new_name_before);
    CHECK(reload_error.empty());
    CHECK(generation_after == 2);
    CHECK(open_after_reload);  // the connection made before the reload still carries data
    CHECK_FALSE(old_name_after);
    CHECK(new_name_after);
    CHECK(bad_error.find(files.cert_file) != std::string::npos);
    CHECK(generation_after_bad == 2);
    CHECK(after_bad_reload);  // the certificates in use were kept
    CHECK(open_after_bad);
    CHECK(loop.buffers().in_use() == 0);
}

TEST_CASE("a session ticket resumes the next connection, across a reload and one key rotation, not two") {
    TlsServerContext sctx(files.cert, files.key);
    TlsClientContext cctx(trusting(files.ca));
    Loop loop;
    Outcome first, second, no_key, after_reload, after_one_rotation, after_two_rotations, renewed;
    std::size_t remembered = 0;
    run(loop, [&]() -> Task<void> {
        first = co_await one_exchange(loop, sctx, cctx, "localhost", "upstream-a");
        remembered = cctx.remembered_sessions();
        second = co_await one_exchange(loop, sctx, cctx, "localhost", "upstream-a");
        no_key = co_await one_exchange(loop, sctx, cctx, "localhost");  // no resume key: nothing offered
        CHECK(sctx.reload().empty());
        after_reload = co_await one_exchange(loop, sctx, cctx, "localhost", "upstream-a");
        sctx.rotate_ticket_key();
        after_one_rotation = co_await one_exchange(loop, sctx, cctx, "localhost", "upstream-a");
        // The session just remembered was issued under the newest key: two
        // rotations make that key too old.
        sctx.rotate_ticket_key();
        sctx.rotate_ticket_key();
        after_two_rotations = co_await one_exchange(loop, sctx, cctx, "localhost", "upstream-a");
        renewed = co_await one_exchange(loop, sctx, cctx, "localhost", "upstream-a");
    }());
    CHECK(first.ok);
    CHECK_FALSE(first.client_resumed);
    CHECK(remembered == 1);
    CHECK(second.ok);
    CHECK(second.client_resumed);
    CHECK(second.server_resumed);
    CHECK(no_key.ok);
    CHECK_FALSE(no_key.client_resumed);
    CHECK(after_reload.ok);
    CHECK(after_reload.server_resumed);
    CHECK(after_one_rotation.ok);
    CHECK(after_one_rotation.server_resumed);
    CHECK(after_two_rotations.ok);  // a full handshake instead
    CHECK_FALSE(after_two_rotations.server_resumed);
    CHECK(renewed.ok);
    CHECK(renewed.server_resumed);
    CHECK(loop.buffers().in_use() == 0);
}

TEST_CASE("resumption is kept per key and survives SNI on a multi-certificate listener") {
    MadeCertificates made;
    const TlsCertificateFiles fallback = made.make("default", "DNS:localhost");
    const TlsCertificateFiles alpha = made.make("alpha", "DNS:alpha.test");
    TlsServerContext sctx({fallback, alpha});
    TlsClientContext cctx(trusting(made.ca()));
    Loop loop;
    Outcome a1, a2, l1, l2;
    run(loop, [&]() -> Task<void> {
        a1 = co_await one_exchange(loop, sctx, cctx, "alpha.test", "alpha");
        l1 = co_await one_exchange(loop, sctx, cctx, "localhost", "local");
        a2 = co_await one_exchange(loop, sctx, cctx, "alpha.test", "alpha");
        l2 = co_await one_exchange(loop, sctx, cctx, "localhost", "local");
    }());
    CHECK(a1.ok);
    CHECK(l1.ok);
    CHECK_FALSE(l1.client_resumed);  // another key: alpha's session is not offered
    CHECK(a2.ok);
    CHECK(a2.client_resumed);
    CHECK(l2.ok);
    CHECK(l2.client_resumed);
    CHECK(cctx.remembered_sessions() == 2);
}

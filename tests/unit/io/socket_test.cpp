// Socket and Loop against the real kernel: TCP on loopback, a real io_uring.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <string>
#include <thread>
#include <vector>

#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/socket.hpp"
#include "ringrelay/io/task.hpp"
#include "support/tcp_pair.hpp"

using namespace rr::io;

namespace {

// Runs body on loop until it finishes (it must stop the loop) or 10 s pass.
void run(Loop& loop, Task<void> body) {
    struct Guard : Timer {
        explicit Guard(Loop* l) : Timer([](Timer* t) { static_cast<Guard*>(t)->loop->stop(); }), loop(l) {}
        Loop* loop;
    } guard(&loop);
    loop.timers().arm(guard, loop.now_ms() + 10000);
    spawn(std::move(body));
    loop.run();
    loop.timers().cancel(guard);
    loop.drain_sockets(2000);  // closed sockets get their last CQEs before the Loop dies
    CHECK(loop.live_sockets() == 0);
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        REQUIRE(n > 0);
        off += static_cast<std::size_t>(n);
    }
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
    return s;
}

// Reads everything from sock until EOF, consuming slowly if pause_ms > 0.
Task<void> drain(Loop& loop, Socket* sock, std::string& into, int pause_ms, int& last_state) {
    for (;;) {
        const int st = co_await sock->readable(loop.now_ms() + 5000);
        if (st != Socket::kData) {
            last_state = st;
            co_return;
        }
        const std::string_view f = sock->front();
        into.append(f);
        sock->consume(f.size());
        if (pause_ms > 0) co_await SleepUntil(loop, loop.now_ms() + pause_ms);
    }
}

}  // namespace

TEST_CASE("received bytes arrive in provided buffers that go back to the ring after consume") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    sock->start_receiving();
    write_all(client, "hello");
    std::string got;
    unsigned in_use_while_held = 0;
    run(loop, [](Loop& l, Socket* s, std::string& out, unsigned& held) -> Task<void> {
        REQUIRE(co_await s->readable(l.now_ms() + 2000) == Socket::kData);
        out = std::string(s->front());
        held = l.buffers().in_use();
        s->consume(out.size());
        s->close_and_destroy();
        l.stop();
    }(loop, sock, got, in_use_while_held));
    CHECK(got == "hello");
    CHECK(in_use_while_held == 1);
    CHECK(loop.buffers().in_use() == 0);
    close(client);
}

TEST_CASE("a peer's close arrives as EOF after the data it sent") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    sock->start_receiving();
    write_all(client, "abc");
    close(client);
    std::string got;
    int last = 99;
    run(loop, [](Loop& l, Socket* s, std::string& out, int& st) -> Task<void> {
        co_await drain(l, s, out, 0, st);
        s->close_and_destroy();
        l.stop();
    }(loop, sock, got, last));
    CHECK(got == "abc");
    CHECK(last == Socket::kEof);
}

TEST_CASE("a read deadline passes with -ETIMEDOUT and the socket stays usable") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    sock->start_receiving();
    int first = 0;
    std::string later;
    std::thread writer([fd = client] {
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        write_all(fd, "late");
    });
    run(loop, [](Loop& l, Socket* s, int& st, std::string& out) -> Task<void> {
        st = co_await s->readable(l.now_ms() + 30);
        if (co_await s->readable(l.now_ms() + 3000) == Socket::kData) out = std::string(s->front());
        s->consume(s->front().size());
        s->close_and_destroy();
        l.stop();
    }(loop, sock, first, later));
    writer.join();
    CHECK(first == -ETIMEDOUT);
    CHECK(later == "late");
    close(client);
}

TEST_CASE("a large send arrives whole, across short sends") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    const std::string payload = pattern(8 << 20);
    std::string received;
    std::thread reader([fd = client, &received] {
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            received.append(buf, static_cast<std::size_t>(n));
        }
    });
    int rc = -1;
    run(loop, [](Loop& l, Socket* s, const std::string& p, int& out) -> Task<void> {
        out = co_await s->send(p, l.now_ms() + 5000);
        s->close_and_destroy();
        l.stop();
    }(loop, sock, payload, rc));
    reader.join();
    CHECK(rc == 0);
    CHECK(received.size() == payload.size());
    CHECK((received == payload));
    close(client);
}

TEST_CASE("a fast sender is held back by the high-water mark and nothing is lost") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    sock->start_receiving();
    const std::string payload = pattern(3 << 20);
    std::thread writer([fd = client, &payload] {
        write_all(fd, payload);
        close(fd);
    });
    std::string got;
    int last = 99;
    unsigned max_in_use = 0;
    run(loop, [](Loop& l, Socket* s, std::string& out, int& st, unsigned& peak) -> Task<void> {
        for (;;) {
            const int r = co_await s->readable(l.now_ms() + 5000);
            if (r != Socket::kData) {
                st = r;
                break;
            }
            peak = std::max(peak, l.buffers().in_use());
            const std::string_view f = s->front();
            out.append(f);
            s->consume(f.size());
            if (out.size() % 7 == 0) co_await SleepUntil(l, l.now_ms() + 1);
        }
        s->close_and_destroy();
        l.stop();
    }(loop, sock, got, last, max_in_use));
    writer.join();
    CHECK(last == Socket::kEof);
    CHECK((got == payload));
    // Multishot may overshoot the mark by what one task-work pass delivers, never
    // by the whole ring.
    CHECK(max_in_use < loop.buffers().count());
    CHECK(loop.buffers().in_use() == 0);
}

TEST_CASE("when the buffer ring runs dry receiving resumes once buffers come back") {
    LoopOptions opts;
    opts.buffer_count = 2;
    opts.buffer_size = 4096;
    Loop loop(opts);
    auto [s1, c1] = rr::test::tcp_pair();
    auto [s2, c2] = rr::test::tcp_pair();
    auto* a = new Socket(loop, s1);
    auto* b = new Socket(loop, s2);
    a->start_receiving();
    b->start_receiving();
    const std::string pa = pattern(200000), pb = pattern(150000);
    std::thread wa([fd = c1, &pa] { write_all(fd, pa); close(fd); });
    std::thread wb([fd = c2, &pb] { write_all(fd, pb); close(fd); });
    std::string ga, gb;
    int la = 99, lb = 99;
    int done = 0;
    auto reader = [](Loop& l, Socket* s, std::string& out, int& st, int& finished) -> Task<void> {
        co_await drain(l, s, out, 1, st);
        s->close_and_destroy();
        if (++finished == 2) l.stop();
    };
    spawn(reader(loop, b, gb, lb, done));
    run(loop, reader(loop, a, ga, la, done));
    wa.join();
    wb.join();
    CHECK((ga == pa));
    CHECK((gb == pb));
    CHECK(la == Socket::kEof);
    CHECK(lb == Socket::kEof);
    CHECK(loop.stats().enobufs > 0);
}

TEST_CASE("under pressure sockets nobody reads copy to their spill and never drain the ring") {
    // 24 sockets with a buffer's worth each would need 24 of the ring's 16 buffers.
    LoopOptions opts;
    opts.buffer_count = 16;
    opts.buffer_size = 4096;
    Loop loop(opts);
    constexpr std::size_t kSockets = 24;
    const std::string payload = pattern(4096);
    std::vector<Socket*> socks;
    std::vector<int> peers;
    for (std::size_t i = 0; i < kSockets; ++i) {
        auto [server, client] = rr::test::tcp_pair();
        write_all(client, payload);  // all in the kernel before receiving starts
        peers.push_back(client);
        socks.push_back(new Socket(loop, server));
    }
    for (Socket* s : socks) s->start_receiving();
    bool all_arrived = false;
    unsigned peak_in_use = 0;
    std::size_t most_held = 0;
    std::vector<std::string> got(kSockets);
    run(loop, [](Loop& l, std::vector<Socket*>& ss, std::size_t want, bool& arrived, unsigned& peak,
                 std::size_t& held, std::vector<std::string>& out) -> Task<void> {
        // Nobody reads until every byte is in user space (ring buffers or spills).
        const std::uint64_t give_up = l.now_ms() + 3000;
        for (;;) {
            peak = std::max(peak, l.buffers().in_use());
            std::size_t complete = 0;
            for (Socket* s : ss) complete += s->queued_bytes() == want ? 1 : 0;
            if (complete == ss.size()) {
                arrived = true;
                break;
            }
            if (l.now_ms() >= give_up) break;
            co_await SleepUntil(l, l.now_ms() + 1);
        }
        for (Socket* s : ss) held = std::max(held, s->ring_buffers_held());
        for (std::size_t i = 0; i < ss.size(); ++i) {
            while (ss[i]->has_data()) {
                const std::string_view f = ss[i]->front();
                out[i].append(f);
                ss[i]->consume(f.size());
            }
            ss[i]->close_and_destroy();
        }
        l.stop();
    }(loop, socks, payload.size(), all_arrived, peak_in_use, most_held, got));
    for (int fd : peers) close(fd);
    // The kernel may hand out the whole ring in one burst before the loop sees a CQE
    // (so -ENOBUFS may happen once); what counts is that every byte got in.
    CHECK(all_arrived);
    CHECK(loop.stats().recv_spills > 0);
    // Nothing beyond the half mark stays out of the ring (one may be in hand while it
    // is copied, between two polls it is back).
    CHECK(peak_in_use <= loop.buffers().count() / 2);
    CHECK(most_held <= 1);
    for (std::size_t i = 0; i < kSockets; ++i) CHECK((got[i] == payload));
    CHECK(loop.buffers().in_use() == 0);
}

TEST_CASE("abort wakes a waiting reader with -ECANCELED") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    sock->start_receiving();
    int state = 0;
    struct Aborter : Timer {
        explicit Aborter(Socket* s) : Timer([](Timer* t) { static_cast<Aborter*>(t)->sock->abort(); }), sock(s) {}
        Socket* sock;
    } aborter(sock);
    loop.timers().arm(aborter, loop.now_ms() + 20);
    run(loop, [](Loop& l, Socket* s, int& st) -> Task<void> {
        st = co_await s->readable(l.now_ms() + 5000);
        CHECK(co_await s->send("x", 0) == -ECANCELED);
        s->close_and_destroy();
        l.stop();
    }(loop, sock, state));
    CHECK(state == -ECANCELED);
    close(client);
}

TEST_CASE("the peer-gone hook fires when nobody is reading") {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    auto* sock = new Socket(loop, server);
    sock->start_receiving();
    bool fired = false;
    struct Listener final : rr::io::PeerGoneListener {
        Listener(bool& f, Loop& l, Socket* s) noexcept : fired(f), loop(l), sock(s) {}
        bool& fired;
        Loop& loop;
        Socket* sock;
        void on_peer_gone() noexcept override {
            fired = true;
            sock->close_and_destroy();
            loop.stop();
        }
    } listener(fired, loop, sock);
    sock->set_on_peer_gone(&listener);
    close(client);
    run(loop, []() -> Task<void> { co_return; }());
    CHECK(fired);
}

TEST_CASE("work posted from another thread runs on the loop thread in order") {
    Loop loop;
    struct Item : Posted {
        std::vector<int>* order;
        int value;
        std::thread::id* ran_on;
        Loop* loop;
        bool last;
    };
    std::vector<int> order;
    std::thread::id ran_on;
    std::vector<Item> items(50);
    std::thread poster([&] {
        for (int i = 0; i < 50; ++i) {
            Item& it = items[static_cast<std::size_t>(i)];
            it.order = &order;
            it.value = i;
            it.ran_on = &ran_on;
            it.loop = &loop;
            it.last = i == 49;
            it.run = [](Posted* p) {
                auto* self = static_cast<Item*>(p);
                self->order->push_back(self->value);
                *self->ran_on = std::this_thread::get_id();
                if (self->last) self->loop->stop();
            };
            loop.post(&it);
        }
    });
    run(loop, []() -> Task<void> { co_return; }());
    poster.join();
    REQUIRE(order.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
    CHECK(ran_on == std::this_thread::get_id());
}

namespace {

// Queues a send of more than the peer's socket buffers hold (the peer does not
// read), so its first completion is a short send; between the SQE being queued and
// submitted, `race` sets the socket's abort or the send's timeout. The kernel then
// reports the short send (the cancel finds nothing left to cancel), with bytes left.
int short_send_racing(void (*race)(Loop&, Socket*)) {
    Loop loop;
    auto [server, client] = rr::test::tcp_pair();
    const int small = 4096;
    setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(server, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    auto* sock = new Socket(loop, server);
    const std::string payload = pattern(8 << 20);
    int rc = 1;
    bool done = false;
    spawn([](Loop& l, Socket* s, const std::string& p, int& out, bool& finished) -> Task<void> {
        out = co_await s->send(p, l.now_ms() + 60000);
        finished = true;
        l.stop();
    }(loop, sock, payload, rc, done));
    race(loop, sock);  // the send's SQE is queued, not yet submitted
    struct Guard : Timer {
        explicit Guard(Loop* l) : Timer([](Timer* t) { static_cast<Guard*>(t)->loop->stop(); }), loop(l) {}
        Loop* loop;
    } guard(&loop);
    loop.timers().arm(guard, loop.now_ms() + 10000);
    loop.run();
    loop.timers().cancel(guard);
    REQUIRE(done);
    sock->close_and_destroy();
    loop.drain_sockets(2000);
    close(client);
    return rc;
}

}  // namespace

TEST_CASE("a short send that raced abort() fails with -ECANCELED instead of reporting all sent") {
    const int rc = short_send_racing([](Loop&, Socket* s) { s->abort(); });
    CHECK(rc == -ECANCELED);
}

TEST_CASE("a short send that raced its deadline fails with -ETIMEDOUT instead of reporting all sent") {
    // Firing every armed timer now is the send's deadline passing before the kernel
    // has seen the send (its cancel is queued behind it).
    const int rc = short_send_racing([](Loop& l, Socket*) { l.timers().run_expired(UINT64_MAX); });
    CHECK(rc == -ETIMEDOUT);
}

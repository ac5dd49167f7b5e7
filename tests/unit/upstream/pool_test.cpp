// UpstreamPool against the real kernel: a real io::Loop connecting to a loopback
// listener (the kernel completes the handshake from the backlog; nothing accepts).
#include "ringrelay/upstream/pool.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/io/timer.hpp"

using rr::io::Loop;
using rr::io::Task;
using rr::upstream::Acquired;
using rr::upstream::ConnLease;
using rr::upstream::TargetRef;
using rr::upstream::UpstreamPool;
using rr::upstream::UpstreamTarget;

namespace {

// A listening socket on 127.0.0.1 with a free port; closed with the object.
struct LoopbackListener {
    int fd = -1;
    int port = 0;
    LoopbackListener() {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(listen(fd, 512) == 0);
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~LoopbackListener() { close(fd); }
    std::string url(const std::string& path = "") const { return "http://127.0.0.1:" + std::to_string(port) + path; }
};

UpstreamTarget target_of(const std::string& url) {
    UpstreamTarget t;
    std::string error;
    REQUIRE(rr::upstream::parse_target(url, t, error, /*resolve=*/false));
    return t;
}

// Runs body on loop until it stops the loop (or 10 s pass).
void run(Loop& loop, Task<void> body) {
    struct Guard : rr::io::Timer {
        explicit Guard(Loop* l) : Timer([](Timer* t) { static_cast<Guard*>(t)->loop->stop(); }), loop(l) {}
        Loop* loop;
    } guard(&loop);
    loop.timers().arm(guard, loop.now_ms() + 10000);
    rr::io::spawn(std::move(body));
    loop.run();
    loop.timers().cancel(guard);
}

// Loop and pool, torn down in order: idle connections closed, their last CQEs in.
struct Fixture {
    Loop loop;
    UpstreamPool pool{loop};
    ~Fixture() {
        pool.close_idle();
        loop.drain_sockets(2000);
    }
};

struct CountingObserver : rr::upstream::PoolObserver {
    int connections = 0;
    int requests = 0;
    void on_upstream_connection() noexcept override { ++connections; }
    void on_upstream_request() noexcept override { ++requests; }
};

}  // namespace

TEST_CASE("targets added while connects wait leave the waiting connects' targets intact (ASan: no use after free)") {
    LoopbackListener up;
    Fixture f;
    TargetRef first = f.pool.add_target(target_of(up.url("/first")));
    constexpr int kConnects = 16;
    std::vector<TargetRef> added;
    int connected = 0;
    int done = 0;
    const auto one = [](Fixture& f, std::uint32_t id, int& connected, int& done) -> Task<void> {
        Acquired a = co_await f.pool.connect(id, f.loop.now_ms() + 5000);
        if (a.conn) ++connected;
        a.conn.give_back(true);
        if (++done == kConnects) f.loop.stop();
    };
    run(f.loop, [](Fixture& f, const TargetRef& first, std::vector<TargetRef>& added, int port, auto one,
                   int& connected, int& done) -> Task<void> {
        for (int i = 0; i < kConnects; ++i) rr::io::spawn(one(f, first.id(), connected, done));
        // Every connect is suspended in io::connect now. Many new channel addresses
        // arrive meanwhile: the pool's target storage grows many times over.
        for (int i = 0; i < 2000; ++i)
            added.push_back(f.pool.add_target(target_of("http://127.0.0.1:" + std::to_string(port) + "/t" +
                                                        std::to_string(i))));
        co_return;
    }(f, first, added, up.port, one, connected, done));
    CHECK(connected == kConnects);
    CHECK(f.pool.stats().connect_failures == 0);
    CHECK(f.pool.target(first.id()).base_path == "/first");
    CHECK(f.pool.target_count() == 2001);
}

TEST_CASE("a target is found by address, Host and base path, in one lookup") {
    LoopbackListener up;
    Fixture f;
    const TargetRef a = f.pool.add_target(target_of(up.url("/v1")));
    const TargetRef again = f.pool.add_target(target_of(up.url("/v1/")));  // same path once normalised
    const TargetRef other_path = f.pool.add_target(target_of(up.url("/v2")));
    UpstreamTarget other_host = target_of(up.url("/v1"));
    other_host.host_header = "api.example";
    const TargetRef by_host = f.pool.add_target(other_host);
    CHECK(a.id() == again.id());
    CHECK(a.id() != other_path.id());
    CHECK(a.id() != by_host.id());
    CHECK(f.pool.target_count() == 3);
    CHECK(f.pool.target(other_path.id()).base_path == "/v2");
    CHECK(f.pool.target(by_host.id()).host_header == "api.example");
}

TEST_CASE("a target no one refers to is pruned once its last connection is gone") {
    LoopbackListener up;
    Fixture f;
    std::uint32_t old_id = 0;
    {
        const TargetRef only = f.pool.add_target(target_of(up.url("/a")));
        old_id = only.id();
    }
    CHECK(f.pool.target_count() == 0);  // no reference, no connection: gone at once
    CHECK(f.pool.stats().targets_pruned == 1);

    TargetRef t = f.pool.add_target(target_of(up.url("/b")));
    CHECK(t.id() == old_id);  // the freed slot is used again
    run(f.loop, [](Fixture& f, TargetRef& t) -> Task<void> {
        Acquired a = co_await f.pool.connect(t.id(), f.loop.now_ms() + 5000);
        REQUIRE(a.conn);
        a.conn.give_back(true);  // idle now
        const std::uint32_t id = t.id();
        t.reset();  // no channel uses it any more
        CHECK(f.pool.target_count() == 1);  // the idle connection keeps it
        CHECK(f.pool.idle_count() == 1);
        ConnLease c = f.pool.take_idle(id);
        REQUIRE(c);
        c.discard();
        CHECK(f.pool.target_count() == 0);  // its last connection closed: pruned
        f.loop.stop();
    }(f, t));
    CHECK(f.pool.stats().targets_pruned == 2);
}

TEST_CASE("a connection's lease closes it unless given back; the observer counts connections and requests") {
    LoopbackListener up;
    Fixture f;
    CountingObserver seen;
    f.pool.set_observer(&seen);
    const TargetRef t = f.pool.add_target(target_of(up.url()));
    run(f.loop, [](Fixture& f, const TargetRef& t) -> Task<void> {
        {
            Acquired a = co_await f.pool.connect(t.id(), f.loop.now_ms() + 5000);
            REQUIRE(a.conn);
            a.conn.give_back(true);
        }
        for (int i = 0; i < 3; ++i) {  // three more requests on the one pooled connection
            ConnLease c = f.pool.take_idle(t.id());
            REQUIRE(c);
            CHECK(c->reused);
            c.give_back(true);
        }
        {
            ConnLease dropped = f.pool.take_idle(t.id());
            REQUIRE(dropped);
        }  // forgotten: the lease closed it
        CHECK(f.pool.idle_count() == 0);
        CHECK_FALSE(f.pool.take_idle(t.id()));
        f.loop.stop();
    }(f, t));
    CHECK(seen.connections == 1);
    CHECK(seen.requests == 5);
    CHECK(f.pool.stats().requests == 5);
    CHECK(f.pool.stats().reuses == 4);
}

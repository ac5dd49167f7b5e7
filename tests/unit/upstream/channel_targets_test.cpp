#include "ringrelay/upstream/channel_targets.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "ringrelay/io/task.hpp"
#include "ringrelay/io/timer.hpp"

using rr::io::Loop;
using rr::io::Task;
using rr::io::BlockingWorker;
using rr::upstream::ChannelTargets;
using rr::upstream::UpstreamPool;
using rr::upstream::UpstreamTarget;

namespace {

// A resolver that answers what the test tells it, after an optional delay, on
// whatever thread it is called on (the point: never the loop's).
struct FakeDns {
    std::atomic<int> calls{0};
    std::atomic<int> delay_ms{0};
    std::atomic<bool> fail{false};
    std::string address = "127.0.0.1:9001";  // set only while no lookup runs
    std::atomic<std::thread::id> last_thread{};

    ChannelTargets::Resolve fn() {
        return [this](std::string_view url, UpstreamTarget& out, std::string& error) {
            ++calls;
            last_thread = std::this_thread::get_id();
            if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
            if (fail) {
                error = "cannot resolve upstream address";
                return false;
            }
            // Keep the URL's path and Host, swap the name for the address under test.
            const std::string_view rest = url.substr(url.find("//") + 2);
            const std::string path(rest.substr(std::min(rest.find('/'), rest.size())));
            return rr::upstream::parse_target("http://" + address + path, out, error, false);
        };
    }
};

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

struct Fixture {
    Loop loop;
    UpstreamPool pool{loop};
    BlockingWorker resolver{"test-resolver"};
    FakeDns dns;
};

}  // namespace

TEST_CASE("a host name is looked up off the loop, which keeps running meanwhile") {
    Fixture f;
    ChannelTargets targets(f.loop, f.pool, f.resolver, f.dns.fn());
    f.dns.delay_ms = 300;
    bool ok = false, ticked_during_lookup = false;
    rr::upstream::TargetRef target;
    struct Tick : rr::io::Timer {
        Tick() : Timer([](Timer* t) { static_cast<Tick*>(t)->fired = true; }) {}
        bool fired = false;
    } tick;
    f.loop.timers().arm(tick, f.loop.now_ms() + 50);
    run(f.loop, [](Fixture& f, ChannelTargets& targets, Tick& tick, bool& ok, bool& ticked, rr::upstream::TargetRef& target)
                    -> Task<void> {
        std::string error;
        ok = co_await targets.target_for("c1", 1, "http://upstream.example:8080/base", target, error);
        ticked = tick.fired;  // the loop's timer ran while this request waited
        f.loop.stop();
    }(f, targets, tick, ok, ticked_during_lookup, target));
    CHECK(ok);
    CHECK(ticked_during_lookup);
    CHECK(f.dns.calls == 1);
    CHECK(f.dns.last_thread.load() != std::this_thread::get_id());
    CHECK(f.pool.target(target.id()).address.to_string() == "127.0.0.1:9001");
    CHECK(f.pool.target(target.id()).base_path == "/base");
}

TEST_CASE("numeric addresses never leave the loop") {
    Fixture f;
    ChannelTargets targets(f.loop, f.pool, f.resolver, f.dns.fn(), /*refresh_ms=*/0);
    bool ok = false;
    rr::upstream::TargetRef target;
    run(f.loop, [](Fixture& f, ChannelTargets& targets, bool& ok, rr::upstream::TargetRef& target) -> Task<void> {
        std::string error;
        ok = co_await targets.target_for("c1", 1, "http://127.0.0.1:8080", target, error);
        ok = ok && co_await targets.target_for("c1", 1, "http://127.0.0.1:8080", target, error);  // refresh_ms 0
        f.loop.stop();
    }(f, targets, ok, target));
    CHECK(ok);
    CHECK(targets.lookups() == 0);
    CHECK(f.dns.calls == 0);
    CHECK(f.pool.target(target.id()).address.to_string() == "127.0.0.1:8080");
}

TEST_CASE("a stale address is looked up again; a failed lookup keeps the known one") {
    Fixture f;
    ChannelTargets targets(f.loop, f.pool, f.resolver, f.dns.fn(), /*refresh_ms=*/0);
    std::vector<std::string> seen;
    run(f.loop, [](Fixture& f, ChannelTargets& targets, std::vector<std::string>& seen) -> Task<void> {
        std::string error;
        rr::upstream::TargetRef t;
        const auto ask = [&]() -> Task<void> {
            const bool ok = co_await targets.target_for("c1", 1, "http://upstream.example:80", t, error);
            seen.push_back(ok ? f.pool.target(t.id()).address.to_string() : "error: " + error);
        };
        co_await ask();                  // first lookup: .1
        f.dns.address = "127.0.0.2:9001";
        co_await ask();                  // stale (refresh_ms 0): looked up again, .2
        f.dns.fail = true;
        co_await ask();                  // the lookup fails: .2 stays
        f.loop.stop();
    }(f, targets, seen));
    REQUIRE(seen.size() == 3);
    CHECK(seen[0] == "127.0.0.1:9001");
    CHECK(seen[1] == "127.0.0.2:9001");
    CHECK(seen[2] == "127.0.0.2:9001");
    CHECK(f.dns.calls == 3);
}

TEST_CASE("a first lookup that fails is an error; a new channel version is looked up at once") {
    Fixture f;
    ChannelTargets targets(f.loop, f.pool, f.resolver, f.dns.fn());  // refresh after 60 s
    std::vector<std::string> seen;
    run(f.loop, [](Fixture& f, ChannelTargets& targets, std::vector<std::string>& seen) -> Task<void> {
        std::string error;
        rr::upstream::TargetRef t;
        f.dns.fail = true;
        bool ok = co_await targets.target_for("c1", 1, "http://upstream.example:80", t, error);
        seen.push_back(ok ? "ok" : "error: " + error);
        f.dns.fail = false;
        ok = co_await targets.target_for("c1", 1, "http://upstream.example:80", t, error);
        seen.push_back(ok ? f.pool.target(t.id()).address.to_string() : "error");
        f.dns.address = "127.0.0.3:9001";
        ok = co_await targets.target_for("c1", 1, "http://upstream.example:80", t, error);  // fresh: no lookup
        seen.push_back(ok ? f.pool.target(t.id()).address.to_string() : "error");
        ok = co_await targets.target_for("c1", 2, "http://upstream.example:80/v2", t, error);  // updated channel
        seen.push_back(ok ? f.pool.target(t.id()).address.to_string() + f.pool.target(t.id()).base_path : "error");
        f.loop.stop();
    }(f, targets, seen));
    REQUIRE(seen.size() == 4);
    CHECK(seen[0] == "error: cannot resolve upstream address");
    CHECK(seen[1] == "127.0.0.1:9001");
    CHECK(seen[2] == "127.0.0.1:9001");
    CHECK(seen[3] == "127.0.0.3:9001/v2");
    CHECK(f.dns.calls == 3);
}

TEST_CASE("while one request refreshes an address, the others use the known one at once") {
    Fixture f;
    ChannelTargets targets(f.loop, f.pool, f.resolver, f.dns.fn(), /*refresh_ms=*/0);
    std::vector<std::string> order;
    run(f.loop, [](Fixture& f, ChannelTargets& targets, std::vector<std::string>& order) -> Task<void> {
        std::string error;
        rr::upstream::TargetRef t;
        co_await targets.target_for("c1", 1, "http://upstream.example:80", t, error);
        f.dns.delay_ms = 200;
        // The refreshing request, started on its own; then another request for c1.
        bool refreshed = false;
        rr::io::spawn([](ChannelTargets& targets, std::vector<std::string>& order, bool& done) -> Task<void> {
            std::string e;
            rr::upstream::TargetRef t2;
            co_await targets.target_for("c1", 1, "http://upstream.example:80", t2, e);
            order.push_back("refresher");
            done = true;
        }(targets, order, refreshed));
        co_await targets.target_for("c1", 1, "http://upstream.example:80", t, error);
        order.push_back("other");
        while (!refreshed) co_await f.resolver.run(f.loop, [] {});  // let the refresher finish
        f.loop.stop();
    }(f, targets, order));
    REQUIRE(order.size() == 2);
    CHECK(order[0] == "other");
    CHECK(order[1] == "refresher");
    CHECK(f.dns.calls == 2);  // the first lookup and one refresh, not one per request
}

TEST_CASE("known_target answers without a lookup only for a known, fresh address of that version") {
    Fixture f;
    ChannelTargets named(f.loop, f.pool, f.resolver, f.dns.fn());                 // refresh after 60 s
    ChannelTargets always_stale(f.loop, f.pool, f.resolver, f.dns.fn(), /*refresh_ms=*/0);
    rr::upstream::TargetRef t;
    CHECK_FALSE(named.known_target("c1", 1, t));  // never looked up
    run(f.loop, [](Fixture& f, ChannelTargets& named, ChannelTargets& stale) -> Task<void> {
        std::string error;
        rr::upstream::TargetRef t;
        co_await named.target_for("c1", 1, "http://upstream.example:80", t, error);
        co_await stale.target_for("c1", 1, "http://upstream.example:80", t, error);
        co_await stale.target_for("n1", 1, "http://127.0.0.1:80", t, error);
        f.loop.stop();
    }(f, named, always_stale));
    CHECK(named.known_target("c1", 1, t));
    CHECK(f.pool.target(t.id()).address.to_string() == "127.0.0.1:9001");
    CHECK_FALSE(named.known_target("c1", 2, t));        // the channel changed
    CHECK_FALSE(always_stale.known_target("c1", 1, t));  // due for a new lookup
    CHECK(always_stale.known_target("n1", 1, t));        // numeric: never stale
}

TEST_CASE("an entry not asked for within forget_after is dropped, and its target pruned with it") {
    Fixture f;
    ChannelTargets targets(f.loop, f.pool, f.resolver, f.dns.fn(), /*refresh_ms=*/0, /*forget_after_ms=*/0);
    run(f.loop, [](Fixture& f, ChannelTargets& targets) -> Task<void> {
        std::string error;
        {
            rr::upstream::TargetRef t;
            CHECK(co_await targets.target_for("old", 1, "http://127.0.0.1:8081", t, error));
        }
        CHECK(targets.entries() == 1);
        CHECK(f.pool.target_count() == 1);  // the entry keeps its target
        rr::upstream::TargetRef t;
        CHECK(co_await targets.target_for("new", 1, "http://127.0.0.1:8082", t, error));  // sweeps first
        CHECK(targets.entries() == 1);      // "old" was forgotten
        CHECK(f.pool.target_count() == 1);  // and its target (no connections) pruned
        CHECK(f.pool.target(t.id()).address.to_string() == "127.0.0.1:8082");
        CHECK(f.pool.stats().targets_pruned == 1);
        f.loop.stop();
    }(f, targets));
}

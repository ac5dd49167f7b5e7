#include "shard_thread.hpp"

#include <doctest/doctest.h>

#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "ringrelay/obs/log.hpp"
#include "ringrelay/relay/shard.hpp"

using rr::relay::Shard;
using rr::server::ShardThread;

namespace {

// Log lines written while alive, read back as text (the logger goes to stderr again after).
struct CapturedLog {
    FILE* file = tmpfile();
    CapturedLog() { rr::obs::configure_log(rr::obs::Level::info, fileno(file)); }
    ~CapturedLog() {
        rr::obs::configure_log(rr::obs::Level::info, 2);
        fclose(file);
    }
    std::string text() {
        std::string out;
        char buf[4096];
        rewind(file);
        for (std::size_t n; (n = fread(buf, 1, sizeof buf, file)) > 0;) out.append(buf, n);
        return out;
    }
};

}  // namespace

TEST_CASE("a shard whose loop throws is logged in one JSON line and marked failed; the process goes on") {
    CapturedLog log;
    ShardThread t;
    t.thread = std::thread([&t] {
        t.run_guarded(3, [] { throw std::system_error(EINVAL, std::generic_category(), "io_uring_submit_and_wait"); });
    });
    t.thread.join();
    CHECK(t.finished());
    CHECK(t.failed());
    CHECK_FALSE(t.with_shard([](Shard&) {}));
    const std::string text = log.text();
    CHECK(text.find("\"shard failed\"") != std::string::npos);
    CHECK(text.find("\"shard\":3") != std::string::npos);
    CHECK(text.find("io_uring_submit_and_wait: Invalid argument") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

TEST_CASE("a shard that ends normally is finished, not failed") {
    ShardThread t;
    t.run_guarded(0, [] {});
    CHECK(t.finished());
    CHECK_FALSE(t.failed());
}

TEST_CASE("main's calls into a shard never overlap the shard's destruction") {
    // The shard thread makes, runs and destroys its shard while main keeps calling in
    // (as serve_main does with begin_drain/stop): every call lands on a live shard.
    rr::relay::ServeSettings settings;
    for (int round = 0; round < 20; ++round) {
        ShardThread t;
        std::atomic<bool> attached{false};
        t.thread = std::thread([&] {
            t.run_guarded(0, [&] {
                auto shard = std::make_unique<Shard>(0, settings, rr::io::LoopOptions{});
                t.attach(shard.get());
                attached = true;
                std::this_thread::yield();
                t.detach();  // before the shard dies, as shard_life's guard does
            });
        });
        int calls = 0;
        while (!t.finished()) calls += t.with_shard([](Shard& s) { s.stop(); }) ? 1 : 0;
        t.thread.join();
        CHECK(attached);
        CHECK_FALSE(t.failed());
        CHECK_FALSE(t.with_shard([](Shard&) {}));
    }
}

#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "ringrelay/gateway/channel_board.hpp"

using namespace rr::gateway;

TEST_CASE("a channel's state is created once and stays put") {
    ChannelBoard board;
    ChannelBoard::State& a = board.state("c_1");
    for (int i = 0; i < 1000; ++i) board.state("c_" + std::to_string(i + 2));
    CHECK(&board.state("c_1") == &a);
}

TEST_CASE("the circuit opens after consecutive failures, and a success closes it") {
    ChannelBoard board;
    ChannelBoard::State& s = board.state("c");
    for (std::uint32_t i = 0; i + 1 < ChannelBoard::kFailuresToOpen; ++i) ChannelBoard::record_failure(s, 1000);
    CHECK_FALSE(ChannelBoard::circuit_open(s, 1000));
    ChannelBoard::record_failure(s, 1000);
    CHECK(ChannelBoard::circuit_open(s, 1000));
    CHECK_FALSE(ChannelBoard::circuit_open(s, 1000 + ChannelBoard::kOpenForMs));  // half-open
    ChannelBoard::record_failure(s, 1000 + ChannelBoard::kOpenForMs);              // fails again: re-open
    CHECK(ChannelBoard::circuit_open(s, 1001 + ChannelBoard::kOpenForMs));
    ChannelBoard::record_success(s);
    CHECK_FALSE(ChannelBoard::circuit_open(s, 1001 + ChannelBoard::kOpenForMs));
}

TEST_CASE("an operator can force the circuit open for a while, or close it") {
    ChannelBoard board;
    ChannelBoard::State& s = board.state("c");
    ChannelBoard::force_open(s, 0, 5000);
    CHECK(ChannelBoard::circuit_open(s, 4999));
    CHECK_FALSE(ChannelBoard::circuit_open(s, 5000));
    ChannelBoard::force_open(s, 0, 5000);
    ChannelBoard::force_closed(s);
    CHECK_FALSE(ChannelBoard::circuit_open(s, 1));
}

TEST_CASE("channel slots never exceed max_concurrency, even across threads") {
    ChannelBoard board;
    ChannelBoard::State& s = board.state("c");
    std::atomic<int> over{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 20000; ++i) {
                ChannelSlot slot = ChannelSlot::try_enter(s, 3);
                if (slot.holds() && s.in_flight.load() > 3) ++over;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(over.load() == 0);
    CHECK(s.in_flight.load() == 0);
}

TEST_CASE("failed health checks take a channel out (circuit open) and passing ones bring it back") {
    ChannelBoard board;
    ChannelBoard::State& s = board.state("c_h");
    const std::int64_t now = 1'000'000;
    CHECK(ChannelBoard::record_check(s, true, 200, now) == ChannelBoard::Health::up);
    CHECK_FALSE(ChannelBoard::circuit_open(s, now));
    // One failure is not enough (a blip); kCheckFailuresToDown in a row are.
    CHECK(ChannelBoard::record_check(s, false, 500, now) == ChannelBoard::Health::up);
    CHECK_FALSE(ChannelBoard::circuit_open(s, now));
    CHECK(ChannelBoard::record_check(s, false, 500, now) == ChannelBoard::Health::down);
    CHECK(ChannelBoard::circuit_open(s, now));
    CHECK(ChannelBoard::circuit_open(s, now + 10 * ChannelBoard::kOpenForMs));  // no time-out: checks decide
    // Back only after kCheckSuccessesToUp good checks in a row.
    CHECK(ChannelBoard::record_check(s, true, 200, now) == ChannelBoard::Health::down);
    CHECK(ChannelBoard::record_check(s, false, 0, now) == ChannelBoard::Health::down);
    CHECK(ChannelBoard::record_check(s, true, 200, now) == ChannelBoard::Health::down);
    CHECK(ChannelBoard::record_check(s, true, 200, now) == ChannelBoard::Health::up);
    CHECK_FALSE(ChannelBoard::circuit_open(s, now));
    CHECK(s.checks.load() == 7);
    CHECK(s.checks_failed.load() == 3);
    CHECK(s.last_check_status.load() == 200);
}

TEST_CASE("turning checks off, or an operator closing the circuit, forgets a health-check down") {
    ChannelBoard board;
    ChannelBoard::State& s = board.state("c_h");
    ChannelBoard::record_check(s, false, 503, 1);
    ChannelBoard::record_check(s, false, 503, 1);
    REQUIRE(ChannelBoard::health_down(s));
    ChannelBoard::force_closed(s);
    CHECK_FALSE(ChannelBoard::circuit_open(s, 1));
    ChannelBoard::record_check(s, false, 503, 1);
    ChannelBoard::record_check(s, false, 503, 1);
    REQUIRE(ChannelBoard::health_down(s));
    ChannelBoard::clear_health(s);
    CHECK(s.health.load() == ChannelBoard::Health::unchecked);
    CHECK_FALSE(ChannelBoard::circuit_open(s, 1));
}

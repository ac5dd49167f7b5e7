#include <doctest/doctest.h>

#include <map>
#include <random>
#include <vector>

#include "ringrelay/gateway/channel_pick.hpp"

using namespace rr::gateway;

TEST_CASE("the lowest priority value with a usable channel wins") {
    std::vector<Candidate> c = {{5, 1, true}, {1, 1, false}, {2, 1, true}, {2, 3, true}};
    for (std::uint32_t r = 0; r < 100; ++r) {
        const int i = pick_channel(c, r);
        CHECK((i == 2 || i == 3));
    }
}

TEST_CASE("weights split traffic within a priority") {
    std::vector<Candidate> c = {{0, 1, true}, {0, 3, true}};
    std::mt19937 rng(1);
    std::map<int, int> hits;
    for (int n = 0; n < 40000; ++n) ++hits[pick_channel(c, rng())];
    const double share = hits[1] / 40000.0;
    CHECK(share > 0.72);
    CHECK(share < 0.78);
}

TEST_CASE("nothing usable gives no channel") {
    std::vector<Candidate> c = {{0, 1, false}, {1, 1, false}};
    CHECK(pick_channel(c, 7) == kNoChannel);
    CHECK(pick_channel({}, 7) == kNoChannel);
    CHECK(count_usable(c) == 0);
}

TEST_CASE("a weight of zero still counts as one") {
    std::vector<Candidate> c = {{0, 0, true}};
    CHECK(pick_channel(c, 12345) == 0);
}

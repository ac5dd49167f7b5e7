#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
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

namespace {

// Candidates for a session over the channel ids, all usable and enabled, weight 1.
std::vector<Candidate> for_session(std::uint64_t session, const std::vector<std::string>& ids) {
    std::vector<Candidate> c;
    for (const std::string& id : ids) {
        Candidate k{0, 1, true};
        k.affinity = affinity_of(session, id);
        c.push_back(k);
    }
    return c;
}

// prefix + n, built without operator+ (GCC 12's false -Wrestrict on it).
std::string numbered(const char* prefix, int n) {
    std::string out(prefix);
    out += std::to_string(n);
    return out;
}

const std::vector<std::string> kIds = {"c_alpha", "c_bravo", "c_charlie", "c_delta"};

}  // namespace

TEST_CASE("a session hash is stable and never 0") {
    CHECK(session_hash("conversation-1") == session_hash("conversation-1"));
    CHECK(session_hash("conversation-1") != session_hash("conversation-2"));
    CHECK(session_hash("") != 0);
    // A fixed value: every node and every build must send a session to the same channel.
    CHECK(affinity_of(session_hash("s"), "c_x") == affinity_of(session_hash(std::string("s")), std::string("c_x")));
}

TEST_CASE("a session keeps its channel, moves when it is unusable and comes back") {
    for (int s = 0; s < 200; ++s) {
        const std::uint64_t session = session_hash(numbered("session-", s));
        std::vector<Candidate> c = for_session(session, kIds);
        const int home = pick_channel_for_session(c);
        REQUIRE(home != kNoChannel);
        CHECK(home_channel(c) == home);
        c[home].usable = false;  // circuit open, saturated or tried
        const int moved = pick_channel_for_session(c);
        CHECK(moved != home);
        CHECK(moved != kNoChannel);
        CHECK(home_channel(c) == home);  // still its home: the pick counts as moved
        // Only the sessions of the lost channel move: another channel's loss leaves it.
        std::vector<Candidate> d = for_session(session, kIds);
        d[(home + 1) % 4].usable = false;
        d[(home + 1) % 4].enabled = false;
        CHECK(pick_channel_for_session(d) == home);
        c[home].usable = true;  // recovered
        CHECK(pick_channel_for_session(c) == home);
    }
}

TEST_CASE("sessions spread over channels by weight, and priority still comes first") {
    std::map<int, int> hits;
    for (int s = 0; s < 20000; ++s) {
        std::vector<Candidate> c = for_session(session_hash(numbered("s", s)), {"c_a", "c_b", "c_c"});
        c[1].weight = 3;
        c[2].priority = 1;  // a backup: never picked while the others are usable
        ++hits[pick_channel_for_session(c)];
    }
    CHECK(hits[2] == 0);
    const double share = hits[1] / 20000.0;
    CHECK(share > 0.72);
    CHECK(share < 0.78);
}

TEST_CASE("a session with nothing usable gets no channel") {
    std::vector<Candidate> c = for_session(session_hash("x"), kIds);
    for (Candidate& k : c) k.usable = false;
    CHECK(pick_channel_for_session(c) == kNoChannel);
}

// Response routes (store/responses.cpp): stored in batches, read by id, swept when expired.
#include <doctest/doctest.h>

#include <string>

#include "store_test_support.hpp"

using namespace rr::store;
using rr::store::test::Fixture;

TEST_CASE("response routes are stored, read back and replaced") {
    Fixture f;
    const ResponseRoute routes[] = {{"resp_a", "ch-1", "k_1", f.now + 1000}, {"resp_b", "ch-2", "k_2", f.now + 5}};
    REQUIRE(put_response_routes(*f.env, routes, f.now).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    ResponseRouteView a = r.response_route("resp_a");
    REQUIRE(a.valid());
    CHECK(a.channel_id() == "ch-1");
    CHECK(a.key_id() == "k_1");
    CHECK(a.expires_at_ms() == f.now + 1000);
    CHECK_FALSE(a.expired_at(f.now + 999));
    CHECK(a.expired_at(f.now + 1000));
    CHECK_FALSE(r.response_route("resp_none").valid());
    CHECK_FALSE(r.response_route("").valid());
    r.reset();
    const ResponseRoute again[] = {{"resp_a", "ch-3", "k_1", f.now + 2000}};
    REQUIRE(put_response_routes(*f.env, again, f.now).ok());
    REQUIRE(r.renew().ok());
    CHECK(r.response_route("resp_a").channel_id() == "ch-3");
}

TEST_CASE("the sweep deletes expired routes only") {
    Fixture f;
    const ResponseRoute routes[] = {{"resp_old", "ch-1", "k_1", f.now + 10}, {"resp_new", "ch-1", "k_1", f.now + 100}};
    REQUIRE(put_response_routes(*f.env, routes, f.now).ok());
    std::size_t pruned = 9;
    REQUIRE(prune_response_routes(*f.env, f.now + 50, &pruned).ok());
    CHECK(pruned == 1);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK_FALSE(r.response_route("resp_old").valid());
    CHECK(r.response_route("resp_new").valid());
    r.reset();
    REQUIRE(prune_response_routes(*f.env, f.now + 50, &pruned).ok());
    CHECK(pruned == 0);
}

TEST_CASE("an id over kMaxResponseIdBytes is not stored") {
    Fixture f;
    const std::string long_id(kMaxResponseIdBytes + 1, 'x');
    const ResponseRoute routes[] = {{long_id, "ch-1", "k_1", f.now + 10}};
    REQUIRE(put_response_routes(*f.env, routes, f.now).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK_FALSE(r.response_route(long_id).valid());
}

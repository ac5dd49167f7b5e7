// The admin API without sockets: routes, the token, query and body parsing, and
// each handler run against a real store (the worker's jobs run here, inline).
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "../store/store_test_support.hpp"
#include "ringrelay/admin/admin.hpp"
#include "api.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"
#include "ringrelay/obs/metrics.hpp"

namespace admin = rr::admin;
using admin::Endpoint;
using admin::Reply;
using admin::Route;
using rr::admin::AdminContext;
using rr::gateway::GatewayShared;
using rr::store::test::TempDir;

namespace {

constexpr std::int64_t kNow = 1'750'000'000'000LL;

// A gateway over a fresh store, and an AdminContext pointing at it.
struct World {
    TempDir dir;
    std::unique_ptr<GatewayShared> gw;
    std::unique_ptr<rr::obs::Metrics> metrics = std::make_unique<rr::obs::Metrics>(2, "test");
    AdminContext ctx;

    World() {
        std::unique_ptr<rr::store::Env> env;
        const rr::store::Status s = rr::store::Env::open(dir.sub("data"), env);
        REQUIRE(s.ok());
        gw = std::make_unique<GatewayShared>(std::move(env), 4, 8);
        ctx.token = "t0ken";
        ctx.gateway = gw.get();
        ctx.metrics = metrics.get();
    }

    // Plans and runs a request as serve_admin would (the worker's job inline).
    Reply call(Endpoint e, std::string id = {}, std::string body = {}, std::string query = {}) {
        admin::Request req;
        req.endpoint = e;
        req.id = std::move(id);
        req.body = std::move(body);
        req.query = std::move(query);
        req.now_ms = rr::now_unix_ms();
        admin::Action a = admin::plan_admin(req, ctx);
        return a.now ? std::move(*a.now) : a.job();
    }
};

// The reply's JSON body, parsed (fails the test when it is not JSON).
struct Json {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    explicit Json(const Reply& r) {
        INFO(r.body, r.message);
        REQUIRE_FALSE(r.is_error());
        REQUIRE_FALSE(parser.parse(r.body).get(root));
    }
    simdjson::dom::element operator[](std::string_view k) { return root[k].value(); }
    bool has(std::string_view k) { return root[k].error() == simdjson::SUCCESS; }
};

std::string str(simdjson::dom::element e) {
    return std::string(std::string_view(e.get_string().value()));
}

void check_error(const Reply& r, int status, std::string_view code, std::string_view mentions = {}) {
    INFO(r.status, " ", r.error_code, ": ", r.message, r.body);
    CHECK(r.status == status);
    CHECK(r.error_code == code);
    if (!mentions.empty()) CHECK(r.message.find(mentions) != std::string::npos);
}

std::string create_key(World& w, std::string body = R"({"name":"k1"})") {
    const Reply r = w.call(Endpoint::key_create, {}, std::move(body));
    REQUIRE(r.status == 201);
    Json j(r);
    return str(j["id"]);
}

std::string create_channel(World& w, std::string name = "c1") {
    const std::string body = R"({"name":")" + name +
                             R"(","base_url":"http://127.0.0.1:9/v1","api_key":"sk-up","models":["m1"]})";
    const Reply r = w.call(Endpoint::channel_create, {}, body);
    REQUIRE(r.status == 201);
    Json j(r);
    return str(j["id"]);
}

}  // namespace

// ---- routes and the token ------------------------------------------------------------

TEST_CASE("every admin path routes to its endpoint, with the id taken from the path") {
    struct Case {
        const char* method;
        const char* path;
        Endpoint endpoint;
        const char* id;
    };
    const Case cases[] = {
        {"GET", "/healthz", Endpoint::healthz, ""},
        {"HEAD", "/readyz", Endpoint::readyz, ""},
        {"GET", "/metrics", Endpoint::metrics, ""},
        {"GET", "/admin/state", Endpoint::state, ""},
        {"GET", "/admin/keys", Endpoint::keys_list, ""},
        {"POST", "/admin/keys", Endpoint::key_create, ""},
        {"GET", "/admin/keys/k_abc", Endpoint::key_get, "k_abc"},
        {"POST", "/admin/keys/k_abc/revoke", Endpoint::key_revoke, "k_abc"},
        {"POST", "/admin/keys/k_abc/unrevoke", Endpoint::key_unrevoke, "k_abc"},
        {"POST", "/admin/keys/k_abc/rotate", Endpoint::key_rotate, "k_abc"},
        {"PUT", "/admin/keys/k_abc/limits", Endpoint::key_limits, "k_abc"},
        {"POST", "/admin/keys/k_abc/release", Endpoint::key_release, "k_abc"},
        {"GET", "/admin/channels", Endpoint::channels_list, ""},
        {"POST", "/admin/channels", Endpoint::channel_create, ""},
        {"GET", "/admin/channels/c_1", Endpoint::channel_get, "c_1"},
        {"PUT", "/admin/channels/c_1", Endpoint::channel_update, "c_1"},
        {"DELETE", "/admin/channels/c_1", Endpoint::channel_remove, "c_1"},
        {"POST", "/admin/channels/c_1/enable", Endpoint::channel_enable, "c_1"},
        {"POST", "/admin/channels/c_1/disable", Endpoint::channel_disable, "c_1"},
        {"POST", "/admin/channels/c_1/circuit", Endpoint::channel_circuit, "c_1"},
        {"GET", "/admin/blocks", Endpoint::blocks_list, ""},
        {"POST", "/admin/blocks", Endpoint::block_add, ""},
        {"DELETE", "/admin/blocks", Endpoint::block_remove, ""},
        {"POST", "/admin/backup", Endpoint::backup, ""},
        {"GET", "/admin/keys/k_abc/", Endpoint::key_get, "k_abc"},  // trailing slash
    };
    for (const Case& c : cases) {
        INFO(c.method, " ", c.path);
        const Route r = admin::route_admin(c.method, c.path);
        CHECK(r.outcome == Route::found);
        CHECK(r.endpoint == c.endpoint);
        CHECK(r.id == c.id);
    }
}

TEST_CASE("only the health endpoints and the status page are open; unknown paths need the token too") {
    CHECK_FALSE(admin::route_admin("GET", "/healthz").needs_token);
    CHECK_FALSE(admin::route_admin("GET", "/readyz").needs_token);
    CHECK(admin::route_admin("GET", "/metrics").needs_token);
    CHECK(admin::route_admin("GET", "/admin/state").needs_token);
    const Route unknown = admin::route_admin("GET", "/admin/nothing");
    CHECK(unknown.outcome == Route::not_found);
    CHECK(unknown.needs_token);
    CHECK(admin::route_admin("GET", "/admin/keys/k1/explode").outcome == Route::not_found);
    CHECK(admin::route_admin("GET", "/admin/keys//revoke").outcome == Route::not_found);
    // The status page is an HTML shell without data: its script fetches with the token.
    CHECK(admin::route_admin("GET", "/").endpoint == admin::Endpoint::status_page);
    CHECK_FALSE(admin::route_admin("GET", "/").needs_token);
    CHECK(admin::route_admin("GET", "/index.html").needs_token);
}

TEST_CASE("a known path with the wrong method is 405 and says which methods it takes") {
    const Route r = admin::route_admin("DELETE", "/admin/keys");
    CHECK(r.outcome == Route::method_not_allowed);
    CHECK(r.allow == "GET, POST");
    CHECK(admin::route_admin("GET", "/admin/keys/k1/revoke").allow == "POST");
    CHECK(admin::route_admin("POST", "/admin/channels/c1").allow == "GET, PUT, PATCH, DELETE");
}

TEST_CASE("the bearer token is read from Authorization and compared exactly") {
    CHECK(admin::bearer_token("Bearer abc") == "abc");
    CHECK(admin::bearer_token("bearer   abc") == "abc");
    CHECK(admin::bearer_token("Basic abc") == "");
    CHECK(admin::bearer_token("") == "");
    CHECK(admin::token_matches("secret-token", "secret-token"));
    CHECK_FALSE(admin::token_matches("secret-tokeN", "secret-token"));
    CHECK_FALSE(admin::token_matches("secret-toke", "secret-token"));
    CHECK_FALSE(admin::token_matches("secret-token2", "secret-token"));
    CHECK_FALSE(admin::token_matches("", "secret-token"));
    CHECK_FALSE(admin::token_matches("", ""));
}

TEST_CASE("query parameters are percent-decoded; a malformed escape is reported") {
    bool bad = false;
    CHECK(admin::query_param("grace=24h", "grace", bad) == "24h");
    CHECK(admin::query_param("x=1&address=10.0.0.0%2F8", "address", bad) == "10.0.0.0/8");
    CHECK(admin::query_param("reason=a+b", "reason", bad) == "a b");
    CHECK(admin::query_param("reveal", "reveal", bad) == "");
    CHECK_FALSE(admin::query_param("graces=1", "grace", bad).has_value());
    CHECK_FALSE(bad);
    admin::query_param("address=%zz", "address", bad);
    CHECK(bad);
}

// ---- bodies --------------------------------------------------------------------------

TEST_CASE("a key body takes models as an array or a comma string and expires as a duration or a time") {
    rr::store::KeySpec a;
    std::string error;
    REQUIRE(admin::parse_key_create(R"({"name":"svc","group":"g1","models":["m1","m2"],"max_concurrency":3,
                                        "max_wait":2,"rpm":60,"tpm":1000,"quota":5,"expires":"30d"})",
                                    kNow, a, error));
    CHECK(a.name == "svc");
    CHECK(a.group == "g1");
    CHECK(a.models == std::vector<std::string>{"m1", "m2"});
    CHECK(a.max_concurrency == 3);
    CHECK(a.max_wait == 2);
    CHECK(a.rpm == 60);
    CHECK(a.tpm == 1000);
    CHECK(a.quota == 5);
    CHECK(a.expires_at_ms == kNow + 30LL * 24 * 3600 * 1000);

    rr::store::KeySpec b;
    REQUIRE(admin::parse_key_create(R"({"name":"svc","models":"m1, m2","expires":"2099-01-01T00:00:00Z"})", kNow, b,
                                    error));
    CHECK(b.models == a.models);
    CHECK(b.expires_at_ms == *rr::parse_rfc3339("2099-01-01T00:00:00Z"));
    CHECK(b.max_concurrency == 1);  // the store's default
}

TEST_CASE("a bad key body is refused with a message naming the field") {
    struct Case {
        const char* body;
        const char* field;
    };
    const Case cases[] = {
        {R"({"group":"g"})", "name: required"},
        {R"({"name":""})", "name:"},
        {R"({"name":"k","group":"bad group"})", "group:"},
        {R"({"name":"k","models":"a b"})", "models:"},
        {R"({"name":"k","models":[1]})", "models:"},
        {R"({"name":"k","max_concurrency":0})", "max_concurrency:"},
        {R"({"name":"k","max_concurrency":1.5})", "max_concurrency:"},
        {R"({"name":"k","rpm":-1})", "rpm:"},
        {R"({"name":"k","rpm":4294967296})", "rpm:"},
        {R"({"name":"k","expires":"yesterday"})", "expires:"},
        {R"({"name":"k","expires":"2001-01-01T00:00:00Z"})", "expires:"},
        {R"({"name":"k","colour":"red"})", "unknown field \"colour\""},
        {R"({"name":"k","name":"j"})", "name: given twice"},
        {R"({"name":"k")", "not valid JSON"},
        {R"(["name"])", "must be a JSON object"},
        {"", "name: required"},
    };
    for (const Case& c : cases) {
        INFO(c.body);
        rr::store::KeySpec spec;
        std::string error;
        CHECK_FALSE(admin::parse_key_create(c.body, kNow, spec, error));
        CHECK(error.find(c.field) != std::string::npos);
    }
}

TEST_CASE("a key patch changes only what it names and needs at least one field") {
    rr::store::KeyPatch p;
    std::string error;
    REQUIRE(admin::parse_key_patch(R"({"rpm":7,"expires":"never"})", kNow, p, error));
    CHECK(p.rpm == 7u);
    CHECK(p.expires_at_ms == 0);
    CHECK_FALSE(p.name.has_value());
    CHECK_FALSE(p.max_concurrency.has_value());
    rr::store::KeyPatch q;
    CHECK_FALSE(admin::parse_key_patch("{}", kNow, q, error));
    CHECK(error.find("at least one field") != std::string::npos);
    rr::store::KeyPatch n;
    REQUIRE(admin::parse_key_patch(R"({"expires":null})", kNow, n, error));
    CHECK(n.expires_at_ms == 0);
}

TEST_CASE("revoke takes an optional reason; rotate takes grace from the query or the body") {
    std::string reason, error;
    REQUIRE(admin::parse_revoke("", reason, error));
    CHECK(reason.empty());
    REQUIRE(admin::parse_revoke(R"({"reason":"leaked"})", reason, error));
    CHECK(reason == "leaked");
    CHECK_FALSE(admin::parse_revoke(R"({"reason":"a\u0001b"})", reason, error));
    CHECK(error.find("reason:") == 0);

    std::int64_t grace = -1;
    REQUIRE(admin::parse_rotate("", "", grace, error));
    CHECK(grace == 24LL * 3600 * 1000);
    REQUIRE(admin::parse_rotate("grace=90s", "", grace, error));
    CHECK(grace == 90'000);
    REQUIRE(admin::parse_rotate("", R"({"grace":"5m"})", grace, error));
    CHECK(grace == 300'000);
    REQUIRE(admin::parse_rotate("", R"({"grace":0})", grace, error));
    CHECK(grace == 0);
    CHECK_FALSE(admin::parse_rotate("grace=soon", "", grace, error));
    CHECK(error.find("grace:") == 0);
    CHECK_FALSE(admin::parse_rotate("grace=400d", "", grace, error));
    CHECK_FALSE(admin::parse_rotate("grace=1h", R"({"grace":"1h"})", grace, error));
}

TEST_CASE("a channel body takes model_map as an object or a string, and timeout as a duration") {
    rr::store::ChannelSpec a;
    std::string error;
    REQUIRE(admin::parse_channel_create(
        R"({"name":"up","base_url":"HTTP://Host:8081/v1/","api_key":"sk-1","models":["m1"],"type":"anthropic",
            "groups":["default","g2"],"model_map":{"a":"m1"},"weight":3,"priority":-2,"max_concurrency":4,
            "timeout":"90s"})",
        a, error));
    CHECK(a.base_url == "http://host:8081/v1");
    CHECK(a.type == rr::store::ChannelType::anthropic);
    CHECK(a.groups == std::vector<std::string>{"default", "g2"});
    CHECK(a.model_map == std::vector<std::pair<std::string, std::string>>{{"a", "m1"}});
    CHECK(a.weight == 3);
    CHECK(a.priority == -2);
    CHECK(a.max_concurrency == 4);
    CHECK(a.timeout_ms == 90'000);
    rr::store::ChannelSpec b;
    REQUIRE(admin::parse_channel_create(
        R"({"name":"up","base_url":"http://h","api_key":"k","models":"m1,m2","model_map":"a=m1,b=m2","timeout":5})", b,
        error));
    CHECK(b.model_map.size() == 2);
    CHECK(b.timeout_ms == 5'000);
    CHECK(b.groups == std::vector<std::string>{"default"});
}

TEST_CASE("a bad channel body is refused naming the field") {
    struct Case {
        const char* body;
        const char* field;
    };
    const Case cases[] = {
        {R"({"name":"c","api_key":"k","models":["m"]})", "base_url: required"},
        {R"({"name":"c","base_url":"ftp://h","api_key":"k","models":["m"]})", "base_url:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k y","models":["m"]})", "api_key:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":[]})", "models:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"type":"grpc"})", "type:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"weight":0})", "weight:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"timeout":"25h"})", "timeout:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"model_map":{"a":1}})", "model_map:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"model_map":"a=b,a=c"})", "model_map:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"group":"g"})", "unknown field \"group\""},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"groups":[]})", "groups:"},
        {R"({"name":"c","base_url":"http://h","api_key":"k","models":["m"],"enabled":"yes"})", "enabled:"},
    };
    for (const Case& c : cases) {
        INFO(c.body);
        rr::store::ChannelSpec spec;
        std::string error;
        CHECK_FALSE(admin::parse_channel_create(c.body, spec, error));
        CHECK(error.find(c.field) != std::string::npos);
    }
    rr::store::ChannelPatch p;
    std::string error;
    REQUIRE(admin::parse_channel_patch(R"({"enabled":false,"priority":5})", p, error));
    CHECK(p.enabled == false);
    CHECK(p.priority == 5);
    CHECK_FALSE(p.name.has_value());
}

TEST_CASE("circuit, block and backup bodies") {
    admin::CircuitChange c;
    std::string error;
    REQUIRE(admin::parse_circuit(R"({"state":"open","for":"300s"})", c, error));
    CHECK(c.open);
    CHECK(c.for_ms == 300'000);
    REQUIRE(admin::parse_circuit(R"({"state":"closed"})", c, error));
    CHECK_FALSE(c.open);
    CHECK_FALSE(admin::parse_circuit(R"({"state":"half"})", c, error));
    CHECK(error.find("state:") == 0);
    CHECK_FALSE(admin::parse_circuit(R"({"state":"closed","for":"1s"})", c, error));
    CHECK_FALSE(admin::parse_circuit("{}", c, error));

    admin::BlockAdd b;
    REQUIRE(admin::parse_block_add(R"({"address":"10.1.2.3/8","ttl":"1h","reason":"abuse"})", kNow, b, error));
    CHECK(rr::format_ip_prefix(b.prefix) == "10.0.0.0/8");
    CHECK(b.expires_at_ms == kNow + 3'600'000);
    CHECK(b.reason == "abuse");
    REQUIRE(admin::parse_block_add(R"({"address":"2001:db8::1","ttl":"never"})", kNow, b, error));
    CHECK(b.expires_at_ms == 0);
    REQUIRE(admin::parse_block_add(R"({"address":"192.0.2.1"})", kNow, b, error));
    CHECK(b.expires_at_ms == kNow + 24LL * 3600 * 1000);
    CHECK_FALSE(admin::parse_block_add(R"({"address":"10.0.0.300"})", kNow, b, error));
    CHECK(error.find("address:") == 0);
    CHECK_FALSE(admin::parse_block_add(R"({"address":"10.0.0.1","ttl":"0s"})", kNow, b, error));
    CHECK(error.find("ttl:") == 0);

    rr::IpPrefix p;
    REQUIRE(admin::parse_block_remove("address=10.0.0.0%2F8", "", p, error));
    CHECK(rr::format_ip_prefix(p) == "10.0.0.0/8");
    REQUIRE(admin::parse_block_remove("", R"({"address":"::1"})", p, error));
    CHECK(rr::format_ip_prefix(p) == "::1");
    CHECK_FALSE(admin::parse_block_remove("", "", p, error));
    CHECK(error.find("address: required") == 0);

    std::string path;
    REQUIRE(admin::parse_backup(R"({"path":"/var/backups/rr"})", path, error));
    CHECK(path == "/var/backups/rr");
    CHECK_FALSE(admin::parse_backup(R"({"path":"relative/dir"})", path, error));
    CHECK(error.find("path:") == 0);
}

// ---- handlers against a store --------------------------------------------------------

TEST_CASE("keys: create answers the secret once; list, show, limits, revoke, unrevoke, rotate") {
    World w;
    const Reply created = w.call(Endpoint::key_create, {}, R"({"name":"svc","max_concurrency":2})");
    REQUIRE(created.status == 201);
    Json c(created);
    const std::string id = str(c["id"]);
    CHECK(rr::store::looks_like_secret(str(c["secret"])));
    CHECK(str(c["name"]) == "svc");

    Json list(w.call(Endpoint::keys_list));
    REQUIRE(list.root.get_array().size() == 1);
    CHECK(str(list.root.at(0)["id"].value()) == id);
    CHECK(list.root.at(0)["secret"].error() == simdjson::NO_SUCH_FIELD);  // never again

    Json limits(w.call(Endpoint::key_limits, id, R"({"rpm":9,"models":["m1"]})"));
    CHECK(int64_t(limits["rpm"]) == 9);
    CHECK(int64_t(limits["max_concurrency"]) == 2);
    CHECK(str(limits["models"].at(0).value()) == "m1");

    Json revoked(w.call(Endpoint::key_revoke, id, R"({"reason":"leaked"})"));
    CHECK(str(revoked["status"]) == "revoked");
    CHECK(str(revoked["revoke_reason"]) == "leaked");
    Json unrevoked(w.call(Endpoint::key_unrevoke, id));
    CHECK(str(unrevoked["status"]) == "active");

    Json rotated(w.call(Endpoint::key_rotate, id, {}, "grace=1h"));
    CHECK(rr::store::looks_like_secret(str(rotated["secret"])));
    CHECK(str(rotated["secret"]) != str(c["secret"]));
    Json shown(w.call(Endpoint::key_get, id));
    CHECK(shown["previous_secret_valid_until"].is_string());

    check_error(w.call(Endpoint::key_get, "k_missing"), 404, "not_found", "k_missing");
    check_error(w.call(Endpoint::key_revoke, "k_missing"), 404, "not_found");
    check_error(w.call(Endpoint::key_limits, id, R"({"max_concurrency":0})"), 400, "invalid_request",
                "max_concurrency");
    check_error(w.call(Endpoint::key_create, {}, R"({"name":"x","tpm":"many"})"), 400, "invalid_request", "tpm");
}

TEST_CASE("release frees every slot of the key, counts it, and old leases no longer count") {
    World w;
    const std::string id = create_key(w);
    rr::gateway::KeySlots& keys = w.gw->keys;
    const std::uint64_t slot = rr::gateway::key_hash_of(id);
    rr::gateway::KeyWaiter waiter(nullptr, nullptr);
    const auto first = keys.acquire(slot, 2, 0, waiter);
    const auto second = keys.acquire(slot, 2, 0, waiter);
    REQUIRE(first.status == rr::gateway::KeySlotStatus::granted);
    REQUIRE(second.status == rr::gateway::KeySlotStatus::granted);
    CHECK(keys.acquire(slot, 2, 0, waiter).status == rr::gateway::KeySlotStatus::busy);

    Json r(w.call(Endpoint::key_release, id));
    CHECK(int64_t(r["released"]) == 2);
    CHECK(keys.in_flight(slot) == 0);
    CHECK(w.metrics->render().find("ringrelay_key_force_releases_total 2") != std::string::npos);
    keys.release(first.lease);  // a request that was still running ends: ignored
    CHECK(keys.in_flight(slot) == 0);
    CHECK(keys.acquire(slot, 2, 0, waiter).status == rr::gateway::KeySlotStatus::granted);

    check_error(w.call(Endpoint::key_release, "k_missing"), 404, "not_found");
}

TEST_CASE("channels: add, show with and without the credential, update, disable, remove") {
    World w;
    const std::string id = create_channel(w);
    Json shown(w.call(Endpoint::channel_get, id));
    CHECK_FALSE(shown.has("api_key"));
    Json revealed(w.call(Endpoint::channel_get, id, {}, "reveal=true"));
    CHECK(str(revealed["api_key"]) == "sk-up");
    check_error(w.call(Endpoint::channel_get, id, {}, "reveal=maybe"), 400, "invalid_request", "reveal");

    Json updated(w.call(Endpoint::channel_update, id, R"({"weight":5,"model_map":{"alias":"m1"}})"));
    CHECK(int64_t(updated["weight"]) == 5);
    CHECK(str(updated["model_map"]["alias"].value()) == "m1");
    Json disabled(w.call(Endpoint::channel_disable, id));
    CHECK_FALSE(bool(disabled["enabled"]));
    Json enabled(w.call(Endpoint::channel_enable, id));
    CHECK(bool(enabled["enabled"]));

    Json list(w.call(Endpoint::channels_list));
    CHECK(list.root.get_array().size() == 1);
    Json removed(w.call(Endpoint::channel_remove, id));
    CHECK(bool(removed["removed"]));
    check_error(w.call(Endpoint::channel_get, id), 404, "not_found");
    check_error(w.call(Endpoint::channel_remove, id), 404, "not_found");
}

TEST_CASE("the circuit endpoint forces a channel's breaker open and closed; unknown channels are 404") {
    World w;
    const std::string id = create_channel(w);
    Json open(w.call(Endpoint::channel_circuit, id, R"({"state":"open","for":"300s"})"));
    CHECK(str(open["circuit"]) == "open");
    rr::gateway::ChannelBoard::State& s = w.gw->channels.state(id);
    const std::int64_t now = rr::now_unix_ms();
    CHECK(rr::gateway::ChannelBoard::circuit_open(s, now));
    CHECK_FALSE(rr::gateway::ChannelBoard::circuit_open(s, now + 301'000));
    Json closed(w.call(Endpoint::channel_circuit, id, R"({"state":"closed"})"));
    CHECK(str(closed["circuit"]) == "closed");
    CHECK(closed["open_until"].is_null());
    CHECK_FALSE(rr::gateway::ChannelBoard::circuit_open(s, now));
    check_error(w.call(Endpoint::channel_circuit, "c_missing", R"({"state":"closed"})"), 404, "not_found");
}

TEST_CASE("blocks: add, list, remove by query or body") {
    World w;
    const Reply added = w.call(Endpoint::block_add, {}, R"({"address":"10.0.0.0/8","ttl":"1h","reason":"abuse"})");
    CHECK(added.status == 201);
    Json list(w.call(Endpoint::blocks_list));
    REQUIRE(list.root.get_array().size() == 1);
    CHECK(str(list.root.at(0)["prefix"].value()) == "10.0.0.0/8");
    CHECK(bool(list.root.at(0)["active"].value()));
    Json removed(w.call(Endpoint::block_remove, {}, {}, "address=10.0.0.0/8"));
    CHECK(str(removed["prefix"]) == "10.0.0.0/8");
    check_error(w.call(Endpoint::block_remove, {}, R"({"address":"10.0.0.0/8"})"), 404, "not_found");
}

TEST_CASE("backup writes a usable copy and refuses a directory that already holds one") {
    World w;
    const std::string key = create_key(w);
    const std::string dest = w.dir.sub("backup");
    Json r(w.call(Endpoint::backup, {}, R"({"path":")" + dest + R"("})"));
    CHECK(str(r["backup"]) == dest);
    CHECK(int64_t(r["size"]) > 0);
    std::unique_ptr<rr::store::Env> copy;
    REQUIRE(rr::store::Env::open(dest, copy).ok());
    rr::store::Reader reader(*copy);
    REQUIRE(reader.renew().ok());
    CHECK(reader.key_by_id(key).valid());
    reader.reset();
    check_error(w.call(Endpoint::backup, {}, R"({"path":")" + dest + R"("})"), 400, "invalid_request", "data.mdb");
    check_error(w.call(Endpoint::backup, {}, R"({"path":")" + w.dir.sub("no/such/dir") + R"("})"), 400,
                "invalid_request", "parent");
}

TEST_CASE("state shows tokens, busy keys by store id, channel circuits and per-shard totals") {
    World w;
    const std::string id = create_key(w);
    const std::string ch = create_channel(w);
    rr::gateway::ChannelBoard::force_open(w.gw->channels.state(ch), rr::now_unix_ms(), 60'000);
    REQUIRE(w.gw->tokens.try_acquire());
    rr::gateway::KeyWaiter waiter(nullptr, nullptr);
    const std::uint64_t slot = rr::gateway::key_hash_of(id);
    REQUIRE(w.gw->keys.acquire(slot, 3, 0, waiter).status == rr::gateway::KeySlotStatus::granted);
    const std::uint64_t stranger = 0x1234;  // a slot no store key hashes to
    REQUIRE(w.gw->keys.acquire(stranger, 1, 0, waiter).status == rr::gateway::KeySlotStatus::granted);

    Json s(w.call(Endpoint::state));
    CHECK(int64_t(s["tokens"]["capacity"].value()) == 4);
    CHECK(int64_t(s["tokens"]["in_use"].value()) == 1);
    CHECK(int64_t(s["tokens"]["free"].value()) == 3);
    CHECK(int64_t(s["tokens"]["max_queue"].value()) == 8);
    auto keys = s["keys"].get_array().value();
    REQUIRE(keys.size() == 2);
    bool saw_key = false, saw_stranger = false;
    for (auto k : keys) {
        if (k["id"].is_null()) {
            saw_stranger = str(k["slot"].value()) == "0000000000001234";
        } else {
            saw_key = str(k["id"].value()) == id && int64_t(k["in_flight"].value()) == 1 &&
                      int64_t(k["max_concurrency"].value()) == 3;
        }
    }
    CHECK(saw_key);
    CHECK(saw_stranger);
    auto channels = s["channels"].get_array().value();
    REQUIRE(channels.size() == 1);
    CHECK(str(channels.at(0)["circuit"].value()) == "open");
    CHECK(s["shards"].get_array().value().size() == 2);
    CHECK(s["uptime_s"].is_uint64());
    w.gw->tokens.release();
}

TEST_CASE("relay mode: store endpoints are 404, state and health still answer") {
    World w;
    w.ctx.gateway = nullptr;
    check_error(w.call(Endpoint::keys_list), 404, "not_found");
    check_error(w.call(Endpoint::channel_create, {}, "{}"), 404, "not_found");
    check_error(w.call(Endpoint::backup, {}, R"({"path":"/tmp/x"})"), 404, "not_found");
    Json s(w.call(Endpoint::state));
    CHECK(s["tokens"].is_null());
    CHECK(w.call(Endpoint::readyz).status == 200);
    CHECK(w.call(Endpoint::healthz).status == 200);
}

TEST_CASE("readyz needs an enabled channel; metrics answer the exposition text or 404 when off") {
    World w;
    const Reply not_ready = w.call(Endpoint::readyz);
    CHECK(not_ready.status == 503);
    const std::string ch = create_channel(w);
    CHECK(w.call(Endpoint::readyz).status == 200);
    w.call(Endpoint::channel_disable, ch);
    CHECK(w.call(Endpoint::readyz).status == 503);

    const Reply m = w.call(Endpoint::metrics);
    CHECK(m.status == 200);
    CHECK(m.content_type == rr::obs::kMetricsContentType);
    CHECK(m.body.find("ringrelay_") != std::string::npos);
    w.ctx.metrics = nullptr;
    check_error(w.call(Endpoint::metrics), 404, "not_found");
}

// ---- the token file ------------------------------------------------------------------

namespace {

struct TokenEnv {
    explicit TokenEnv(const char* value) {
        if (value) ::setenv("RINGRELAY_ADMIN_TOKEN", value, 1);
        else ::unsetenv("RINGRELAY_ADMIN_TOKEN");
    }
    ~TokenEnv() { ::unsetenv("RINGRELAY_ADMIN_TOKEN"); }
};

std::string file_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("the admin token comes from the environment first") {
    TempDir d;
    TokenEnv env("from-env");
    CHECK(rr::admin::load_or_create_admin_token(d.sub("data")) == "from-env");
    struct stat st {};
    CHECK(::stat(d.sub("data/admin.token").c_str(), &st) != 0);  // no file made
}

TEST_CASE("without the environment a 0600 token file is made once and then read back") {
    TempDir d;
    TokenEnv env(nullptr);
    const std::string dir = d.sub("deep/data");  // the data dir does not exist yet
    const std::string token = rr::admin::load_or_create_admin_token(dir);
    CHECK(token.size() == 43);
    CHECK(file_text(dir + "/admin.token") == token + "\n");
    struct stat st {};
    REQUIRE(::stat((dir + "/admin.token").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(rr::admin::load_or_create_admin_token(dir) == token);
    TempDir other;
    CHECK(rr::admin::load_or_create_admin_token(other.path()) != token);
}

TEST_CASE("a hand-written token file is read with its line ending; an empty one is an error") {
    TempDir d;
    TokenEnv env(nullptr);
    {
        std::ofstream(d.sub("admin.token")) << "hand-made\r\n";
    }
    CHECK(rr::admin::load_or_create_admin_token(d.path()) == "hand-made");
    {
        std::ofstream(d.sub("admin.token"), std::ios::trunc) << "\n";
    }
    CHECK_THROWS_AS(rr::admin::load_or_create_admin_token(d.path()), std::runtime_error);
    {
        std::ofstream(d.sub("admin.token"), std::ios::trunc) << "two words\n";
    }
    CHECK_THROWS_AS(rr::admin::load_or_create_admin_token(d.path()), std::runtime_error);
}

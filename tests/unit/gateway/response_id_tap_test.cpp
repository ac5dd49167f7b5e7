// The response id read from /v1/responses answers in flight (response_id_tap.hpp), and
// the table of routes not yet flushed (response_affinity.hpp).
#include "ringrelay/gateway/response_affinity.hpp"
#include "ringrelay/gateway/response_id_tap.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace rr::gateway {
namespace {

std::string id_whole(std::string_view body) {
    ResponseIdTap tap;
    tap.feed(body);
    return std::string(tap.id());
}

// Every two-piece split, and byte by byte, must find what the whole finds.
void check_id(std::string_view body, std::string_view want) {
    CHECK(id_whole(body) == want);
    ResponseIdTap bytewise;
    for (char c : body) bytewise.feed(std::string_view(&c, 1));
    CHECK(bytewise.id() == want);
    for (std::size_t k = 0; k <= body.size(); ++k) {
        ResponseIdTap tap;
        tap.feed(body.substr(0, k));
        tap.feed(body.substr(k));
        INFO("split at " << k);
        CHECK(tap.id() == want);
    }
}

TEST_CASE("JSON answer: the top-level id") {
    check_id(R"({"id":"resp_68a0f1e2","object":"response","status":"completed","output":[{"id":"msg_1"}]})",
             "resp_68a0f1e2");
    check_id("{ \"id\" :\n \"resp_x\" }", "resp_x");
}

TEST_CASE("stream: the response id of response.created, not the type or a later item id") {
    const std::string body =
        "event: response.created\n"
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_abc123\","
        "\"object\":\"response\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n"
        "event: response.output_item.added\n"
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"item\":{\"id\":\"msg_1\"}}\n\n";
    check_id(body, "resp_abc123");
}

TEST_CASE("an \"id\" that is a value, inside a string, or escaped is not the key") {
    check_id(R"({"type":"id","id":"resp_2"})", "resp_2");                   // value "id", then the key
    check_id(R"({"note":"say \"id\": \"no\"","id":"resp_3"})", "resp_3");    // inside a string
    check_id(R"({"i\u0064":"resp_no","id":"resp_4"})", "resp_4");            // escaped key: not taken
    check_id(R"({"ids":"x","xid":"y","id":"resp_5"})", "resp_5");            // other keys
    check_id(R"({"id":17,"id":"resp_6"})", "resp_6");                        // not a string
    check_id(R"(["id","resp_no"])", "");                                     // no ':' after it
}

TEST_CASE("an id value with an escape, a control byte or over kMaxId bytes is not taken") {
    check_id(R"({"id":"resp_\"x","id":"resp_7"})", "resp_7");
    const std::string long_id(ResponseIdTap::kMaxId + 1, 'a');
    check_id("{\"id\":\"" + long_id + "\",\"id\":\"resp_8\"}", "resp_8");
    check_id("{\"id\":\"\",\"id\":\"resp_9\"}", "resp_9");  // empty
}

TEST_CASE("nothing after kScanLimit bytes is looked at") {
    std::string body = "{\"pad\":\"" + std::string(ResponseIdTap::kScanLimit, 'x') + "\",\"id\":\"resp_late\"}";
    CHECK(id_whole(body).empty());
    CHECK(id_whole("{\"pad\":\"xx\",\"id\":\"resp_early\"}") == "resp_early");
}

TEST_CASE("error bodies and garbage find nothing") {
    check_id(R"({"error":{"message":"No response found","type":"invalid_request_error","code":null}})", "");
    check_id("\"\"\"::{{\\\\\"", "");
}

TEST_CASE("ResponseAffinity keeps routes until they are flushed") {
    ResponseAffinity a(60'000);
    CHECK(a.enabled());
    a.remember("resp_1", "chan-a", "key-1", 1'000);
    const auto found = a.find_unflushed("resp_1");
    REQUIRE(found.has_value());
    CHECK(found->channel_id == "chan-a");
    CHECK(found->key_id == "key-1");
    CHECK(found->expires_at_ms == 61'000);
    CHECK_FALSE(a.find_unflushed("resp_2").has_value());
    const auto batch = a.take_unflushed();
    REQUIRE(batch.size() == 1);
    CHECK(a.find_unflushed("resp_1").has_value());  // still here until the write committed
    a.forget_flushed(batch);
    CHECK_FALSE(a.find_unflushed("resp_1").has_value());
    CHECK(a.take_unflushed().empty());
}

TEST_CASE("ResponseAffinity with ttl 0 remembers nothing") {
    ResponseAffinity off(0);
    CHECK_FALSE(off.enabled());
    off.remember("resp_1", "chan-a", "key-1", 1'000);
    CHECK_FALSE(off.find_unflushed("resp_1").has_value());
}

}  // namespace
}  // namespace rr::gateway

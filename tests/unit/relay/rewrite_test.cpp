#include <doctest/doctest.h>

#include <string>

#include "ringrelay/relay/rewrite.hpp"
#include "ringrelay/relay/session.hpp"

using namespace rr;
using namespace rr::relay;

namespace {

upstream::UpstreamTarget target(const char* url) {
    upstream::UpstreamTarget t;
    std::string err;
    REQUIRE(upstream::parse_target(url, t, err));
    return t;
}

PeerAddress peer_v4() {
    PeerAddress p;
    p.family = AF_INET;
    p.bytes[0] = 10;
    p.bytes[3] = 7;
    return p;
}

struct Plan {
    bool strip_client_auth = false;
    std::string extra_headers;
    const char* body_override = nullptr;
};

std::string upstream_head(const std::string& raw, const Plan& plan, const char* url = "http://127.0.0.1:9000") {
    http::RequestHead h;
    REQUIRE(http::parse_request(raw, h).status == http::ParseStatus::complete);
    CapturedRequest captured;
    capture_request(captured, h, peer_v4(), "rid-1", plan.strip_client_auth, plan.body_override != nullptr);
    std::string out;
    const std::size_t len = plan.body_override ? std::string_view(plan.body_override).size() : 0;
    append_upstream_head(out, captured, target(url), plan.extra_headers, h.body, plan.body_override ? &len : nullptr);
    return out;
}

}  // namespace

TEST_CASE("the upstream request gets the upstream's Host, the client in X-Forwarded-For and the request id") {
    const std::string out = upstream_head(
        "POST /v1/chat?a=1 HTTP/1.1\r\nHost: gw.example\r\nX-Forwarded-For: 1.2.3.4\r\nContent-Length: 2\r\n\r\n", {});
    CHECK(out.starts_with("POST /v1/chat?a=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"));
    CHECK(out.find("X-Forwarded-For: 1.2.3.4, 10.0.0.7\r\n") != std::string::npos);
    CHECK(out.find("X-Request-Id: rid-1\r\n") != std::string::npos);
    CHECK(out.find("Content-Length: 2\r\n") != std::string::npos);
    CHECK(out.find("gw.example") == std::string::npos);
    CHECK(out.ends_with("\r\n\r\n"));
}

TEST_CASE("hop-by-hop fields, and fields named by Connection, never reach the upstream") {
    const std::string out = upstream_head(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n"
        "Upgrade: h2c\r\nTE: trailers\r\nProxy-Authorization: secret\r\nExpect: 100-continue\r\nX-Keep: yes\r\n\r\n",
        {});
    for (const char* gone : {"Connection", "X-Hop", "Keep-Alive", "Upgrade", "TE:", "Proxy-Authorization", "Expect"})
        CHECK_MESSAGE(out.find(gone) == std::string::npos, gone);
    CHECK(out.find("X-Keep: yes\r\n") != std::string::npos);
}

TEST_CASE("a chunked request stays chunked upstream; a body override sets its own length") {
    const std::string chunked =
        upstream_head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", {});
    CHECK(chunked.find("Transfer-Encoding: chunked\r\n") != std::string::npos);

    Plan plan;
    plan.body_override = "{\"model\":\"b\"}";
    plan.strip_client_auth = true;
    plan.extra_headers = "Authorization: Bearer upstream-secret\r\n";
    const std::string out = upstream_head(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer rr-client\r\nx-api-key: rr-client\r\n"
        "Accept-Encoding: gzip, br\r\nContent-Length: 13\r\n\r\n",
        plan);
    CHECK(out.find("rr-client") == std::string::npos);
    CHECK(out.find("Accept-Encoding") == std::string::npos);  // usage must stay readable
    CHECK(out.find("Authorization: Bearer upstream-secret\r\n") != std::string::npos);
    CHECK(out.find("Content-Length: 13\r\n") != std::string::npos);
    CHECK(out.find("Content-Length: 13\r\nContent-Length") == std::string::npos);
}

TEST_CASE("a base path in the upstream URL prefixes the request path") {
    const std::string out = upstream_head("GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", {}, "http://127.0.0.1:9000/openai/");
    CHECK(out.starts_with("GET /openai/v1/models HTTP/1.1\r\n"));
}

TEST_CASE("the client response keeps end-to-end fields and states our framing and connection") {
    http::ResponseHead r;
    const std::string raw =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        "Connection: keep-alive\r\nX-Request-Id: upstream-own\r\n\r\n";
    REQUIRE(http::parse_response(raw, r).status == http::ParseStatus::complete);

    std::string v11;
    append_client_head(v11, r, choose_framing(r, 1), "rid-9", true, 1);
    CHECK(v11.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(v11.find("X-Request-Id: rid-9\r\n") != std::string::npos);
    CHECK(v11.find("upstream-own") == std::string::npos);
    CHECK(v11.find("Connection") == std::string::npos);

    std::string v10;
    CHECK(choose_framing(r, 0) == ClientFraming::dechunk);
    append_client_head(v10, r, ClientFraming::dechunk, "rid-9", false, 0);
    CHECK(v10.find("Transfer-Encoding") == std::string::npos);
    CHECK(v10.find("Connection: close\r\n") != std::string::npos);
}

TEST_CASE("hidden upstream account fields are kept out of the client response, one by one") {
    http::ResponseHead r;
    const std::string raw =
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nOpenAI-Organization: org-upstream\r\n"
        "openai-project: proj-upstream\r\nopenai-processing-ms: 12\r\n\r\n";
    REQUIRE(http::parse_response(raw, r).status == http::ParseStatus::complete);
    std::string shown;
    append_client_head(shown, r, choose_framing(r, 1), "rid", true, 1);
    CHECK(shown.find("OpenAI-Organization: org-upstream\r\n") != std::string::npos);
    CHECK(shown.find("openai-project: proj-upstream\r\n") != std::string::npos);
    std::string hidden;
    append_client_head(hidden, r, choose_framing(r, 1), "rid", true, 1, {.openai_organization = true});
    CHECK(hidden.find("org-upstream") == std::string::npos);
    CHECK(hidden.find("openai-project: proj-upstream\r\n") != std::string::npos);
    CHECK(hidden.find("openai-processing-ms: 12\r\n") != std::string::npos);
    hidden.clear();
    append_client_head(hidden, r, choose_framing(r, 1), "rid", true, 1,
                       {.openai_organization = true, .openai_project = true});
    CHECK(hidden.find("upstream") == std::string::npos);
}

TEST_CASE("client request ids are kept only when short and printable") {
    CHECK(acceptable_request_id("abc-123_XYZ"));
    CHECK_FALSE(acceptable_request_id(""));
    CHECK_FALSE(acceptable_request_id("has space"));
    CHECK_FALSE(acceptable_request_id(std::string(129, 'a')));
    CHECK_FALSE(acceptable_request_id("ctl\x01"));
}

TEST_CASE("the gateway keeps the client's billing headers out of the fields; relay mode passes them") {
    const std::string raw =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nOpenAI-Organization: org-client\r\n"
        "openai-project: proj-client\r\nOpenAI-Beta: assistants=v2\r\nContent-Length: 2\r\n\r\n{}";
    http::RequestHead h;
    REQUIRE(http::parse_request(raw, h).status == http::ParseStatus::complete);
    CapturedRequest gateway;
    capture_request(gateway, h, peer_v4(), "rid-1", /*strip_client_auth=*/true, /*replace_body=*/true);
    CHECK(gateway.fields.find("org-client") == std::string::npos);
    CHECK(gateway.fields.find("proj-client") == std::string::npos);
    CHECK(gateway.fields.find("OpenAI-Beta: assistants=v2\r\n") != std::string::npos);
    CHECK(gateway.openai_organization == "OpenAI-Organization: org-client\r\n");
    CHECK(gateway.openai_project == "openai-project: proj-client\r\n");
    CapturedRequest relay;
    capture_request(relay, h, peer_v4(), "rid-1", false, false);
    CHECK(relay.fields.find("OpenAI-Organization: org-client\r\n") != std::string::npos);
    CHECK(relay.fields.find("openai-project: proj-client\r\n") != std::string::npos);
    CHECK(relay.openai_organization.empty());
    gateway.clear();
    CHECK(gateway.openai_organization.empty());
    CHECK(gateway.openai_project.empty());
}

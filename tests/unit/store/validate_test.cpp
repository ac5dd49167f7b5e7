// Every validation rule a writer applies before it stores anything.
#include <doctest/doctest.h>

#include <string>

#include "ringrelay/store/ops.hpp"

using namespace rr::store;

TEST_CASE("names are 1-64 bytes of UTF-8 text without control characters") {
    CHECK(validate_name("key name", "ci bot").ok());
    CHECK(validate_name("key name", "équipe données").ok());
    CHECK(validate_name("key name", std::string(64, 'x')).ok());
    Status s = validate_name("key name", "");
    CHECK(s.code == Errc::invalid);
    CHECK(s.message.find("key name") != std::string::npos);
    CHECK(validate_name("key name", std::string(65, 'x')).code == Errc::invalid);
    CHECK(validate_name("key name", "tab\there").code == Errc::invalid);
    CHECK(validate_name("key name", "new\nline").code == Errc::invalid);
    CHECK(validate_name("key name", "del\x7f").code == Errc::invalid);
    CHECK(validate_name("key name", "\xc3").code == Errc::invalid);              // truncated sequence
    CHECK(validate_name("key name", "\xc0\xaf").code == Errc::invalid);          // overlong '/'
    CHECK(validate_name("key name", "\xed\xa0\x80").code == Errc::invalid);      // surrogate
    CHECK(validate_name("key name", "\xc2\x85").code == Errc::invalid);          // C1 control (NEL)
    CHECK(validate_name("key name", "\xf4\x90\x80\x80").code == Errc::invalid);  // beyond U+10FFFF
}

TEST_CASE("free text allows empty, up to 256 bytes") {
    CHECK(validate_text("reason", "").ok());
    CHECK(validate_text("reason", std::string(256, 'r')).ok());
    CHECK(validate_text("reason", std::string(257, 'r')).code == Errc::invalid);
    CHECK(validate_text("reason", "a\rb").code == Errc::invalid);
}

TEST_CASE("groups and models use their own alphabets") {
    CHECK(validate_group("default").ok());
    CHECK(validate_group("team_a.b-c").ok());
    CHECK(validate_group("").code == Errc::invalid);
    CHECK(validate_group("a b").code == Errc::invalid);
    CHECK(validate_group("a/b").code == Errc::invalid);
    CHECK(validate_group(std::string(65, 'g')).code == Errc::invalid);
    CHECK(validate_model("gpt-4o-2024-08-06").ok());
    CHECK(validate_model("meta-llama/Llama-3-70b:free").ok());
    CHECK(validate_model("a@b+c").ok());
    CHECK(validate_model("").code == Errc::invalid);
    CHECK(validate_model("a,b").code == Errc::invalid);
    CHECK(validate_model("a=b").code == Errc::invalid);
    CHECK(validate_model("a b").code == Errc::invalid);
    CHECK(validate_model(std::string(129, 'm')).code == Errc::invalid);
}

TEST_CASE("credentials are 1-1024 visible ASCII characters") {
    CHECK(validate_credential("sk-abc_123.XYZ").ok());
    CHECK(validate_credential("").code == Errc::invalid);
    CHECK(validate_credential("sk abc").code == Errc::invalid);
    CHECK(validate_credential("sk\r\nX-Evil: 1").code == Errc::invalid);
    CHECK(validate_credential(std::string(1025, 'k')).code == Errc::invalid);
}

TEST_CASE("model lists are split, trimmed, validated and de-duplicated") {
    std::vector<std::string> out;
    REQUIRE(parse_model_list("gpt-4o, gpt-4o-mini,gpt-4o", out).ok());
    CHECK(out == std::vector<std::string>{"gpt-4o", "gpt-4o-mini"});
    REQUIRE(parse_model_list("", out).ok());
    CHECK(out.empty());
    CHECK(parse_model_list("a,,b", out).code == Errc::invalid);
    CHECK(parse_model_list("a,b c", out).code == Errc::invalid);
    std::string many;
    for (int i = 0; i < 257; ++i) many += rr::cat("m", std::to_string(i), ",");
    many.pop_back();
    CHECK(parse_model_list(many, out).code == Errc::invalid);
    REQUIRE(parse_group_list("default,vip", out).ok());
    CHECK(out.size() == 2);
    CHECK(parse_group_list("default,v i p", out).code == Errc::invalid);
}

TEST_CASE("model maps are requested=upstream pairs with each source once") {
    std::vector<std::pair<std::string, std::string>> map;
    REQUIRE(parse_model_map("gpt-4=gpt-4o, claude=claude-3-5-sonnet", map).ok());
    REQUIRE(map.size() == 2);
    CHECK(map[0].first == "gpt-4");
    CHECK(map[0].second == "gpt-4o");
    CHECK(map[1].first == "claude");
    REQUIRE(parse_model_map("", map).ok());
    CHECK(map.empty());
    CHECK(parse_model_map("gpt-4", map).code == Errc::invalid);
    CHECK(parse_model_map("=gpt-4", map).code == Errc::invalid);
    CHECK(parse_model_map("gpt-4=", map).code == Errc::invalid);
    CHECK(parse_model_map("a=b,a=c", map).code == Errc::invalid);
    CHECK(parse_model_map("a=b=c", map).code == Errc::invalid);
}

TEST_CASE("base URLs are taken apart and normalised") {
    struct Case {
        const char* in;
        bool tls;
        const char* host;
        unsigned port;
        const char* path;
        const char* normalized;
    };
    const Case cases[] = {
        {"https://api.openai.com", true, "api.openai.com", 443, "", "https://api.openai.com"},
        {"https://api.openai.com/", true, "api.openai.com", 443, "", "https://api.openai.com"},
        {"HTTP://Example.COM:8080/v1//", false, "example.com", 8080, "/v1", "http://example.com:8080/v1"},
        {"http://127.0.0.1:9000", false, "127.0.0.1", 9000, "", "http://127.0.0.1:9000"},
        {"http://[::1]:8081/openai", false, "::1", 8081, "/openai", "http://[::1]:8081/openai"},
        {"https://[2001:db8::1]", true, "2001:db8::1", 443, "", "https://[2001:db8::1]"},
        {"https://gw.example.com/a%20b/c", true, "gw.example.com", 443, "/a%20b/c", "https://gw.example.com/a%20b/c"},
        {"http://localhost:65535", false, "localhost", 65535, "", "http://localhost:65535"},
        {"http://h:1", false, "h", 1, "", "http://h:1"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.in);
        BaseUrl url;
        Status s = parse_base_url(c.in, url);
        INFO(s.message);
        REQUIRE(s.ok());
        CHECK(url.tls == c.tls);
        CHECK(url.host == c.host);
        CHECK(url.port == c.port);
        CHECK(url.path_prefix == c.path);
        CHECK(url.normalized == c.normalized);
        CHECK(url.normalized.substr(url.host_offset, url.host.size()) == url.host);
        CHECK(url.normalized.substr(url.path_offset) == url.path_prefix);
    }
}

TEST_CASE("base URLs without an http(s) scheme, host or valid port, or with query, fragment or userinfo are refused") {
    for (const char* bad : {"",
                            "api.openai.com",
                            "ftp://host",
                            "https://",
                            "http://:80",
                            "http://host:0",
                            "http://host:65536",
                            "http://host:",
                            "http://host:8o",
                            "http://host/?q=1",
                            "http://host/#frag",
                            "http://user:pw@host",
                            "http://ho st",
                            "http://host/a b",
                            "http://[::1",
                            "http://[::1]x",
                            "http://[1.2.3.4]",
                            "http://-bad.example",
                            "http://a..b",
                            "http://host/%zz",
                            "http://host/\x01",
                            "https://[::1]:"}) {
        CAPTURE(bad);
        BaseUrl url;
        Status s = parse_base_url(bad, url);
        CHECK(s.code == Errc::invalid);
        CHECK(s.message.find("base URL") != std::string::npos);
    }
}

TEST_CASE("a key spec needs a name, a valid group and models, and at least one slot") {
    KeySpec k;
    k.name = "ok";
    CHECK(validate_key_spec(k).ok());
    k.max_concurrency = 0;
    CHECK(validate_key_spec(k).code == Errc::invalid);
    k.max_concurrency = 1;
    k.group = "bad group";
    CHECK(validate_key_spec(k).code == Errc::invalid);
    k.group = "default";
    k.models = {"ok", "not ok"};
    CHECK(validate_key_spec(k).code == Errc::invalid);
    k.models.clear();
    k.name.clear();
    CHECK(validate_key_spec(k).code == Errc::invalid);
    k.name = std::string(1, 'x');  // (assigning a literal here trips GCC 12's false -Wrestrict)
    k.expires_at_ms = -1;
    CHECK(validate_key_spec(k).code == Errc::invalid);
}

TEST_CASE("a key patch changes only what it sets") {
    KeySpec k;
    k.name = "before";
    k.rpm = 10;
    KeyPatch p;
    CHECK(p.empty());
    p.tpm = 99;
    p.models = std::vector<std::string>{"m"};
    CHECK_FALSE(p.empty());
    p.apply_to(k);
    CHECK(k.name == "before");
    CHECK(k.rpm == 10);
    CHECK(k.tpm == 99);
    CHECK(k.models == std::vector<std::string>{"m"});
}

TEST_CASE("a channel spec is checked field by field") {
    auto good = [] {
        ChannelSpec c;
        c.name = std::string(1, 'c');
        c.base_url = std::string("https://api.example.com");
        c.api_key = std::string("sk-1");
        c.models = {"m"};
        return c;
    };
    CHECK(validate_channel_spec(good()).ok());
    auto with = [&](auto change) {
        ChannelSpec c = good();
        change(c);
        return validate_channel_spec(c).code;
    };
    CHECK(with([](ChannelSpec& c) { c.name.clear(); }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.base_url = "ftp://x"; }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.api_key.clear(); }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.groups.clear(); }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.groups = {"a b"}; }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.models.clear(); }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.model_map = {{"a", "b c"}}; }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.weight = 0; }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.timeout_ms = kInheritTimeout; }) == Errc::ok);  // the server's applies
    CHECK(ChannelSpec{}.timeout_ms == kInheritTimeout);  // unless the operator sets one
    CHECK(with([](ChannelSpec& c) { c.timeout_ms = kMaxTimeoutMs + 1; }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) { c.type = static_cast<ChannelType>(9); }) == Errc::invalid);
    CHECK(with([](ChannelSpec& c) {
              c.timeout_ms = kMaxTimeoutMs;
              c.priority = -5;
              c.max_concurrency = 0;
          }) == Errc::ok);
}

TEST_CASE("pass-headers name only the billing headers, case-insensitively") {
    std::uint8_t bits = 0xff;
    CHECK(parse_pass_headers("OpenAI-Organization,OpenAI-Project", bits).ok());
    CHECK(bits == (kPassOpenAIOrganization | kPassOpenAIProject));
    CHECK(parse_pass_headers("openai-project", bits).ok());
    CHECK(bits == kPassOpenAIProject);
    CHECK(parse_pass_headers("none", bits).ok());
    CHECK(bits == 0);
    CHECK(parse_pass_headers("", bits).ok());
    CHECK(bits == 0);
    Status s = parse_pass_headers("OpenAI-Organization,Authorization", bits);
    CHECK(s.code == Errc::invalid);
    CHECK(s.message.find("Authorization") != std::string::npos);
    CHECK(pass_headers_text(kPassOpenAIOrganization | kPassOpenAIProject) == "OpenAI-Organization,OpenAI-Project");
    CHECK(pass_headers_text(0).empty());
}

// Channels: records, the (group, model) index, updates that move routes, removal.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <random>
#include <set>

#include "store_test_support.hpp"

using namespace rr::store;
using rr::store::test::channel_spec;
using rr::store::test::Fixture;

namespace {

std::string add(Fixture& f, const ChannelSpec& spec) {
    std::string id;
    Status s = add_channel(*f.env, spec, f.now, id);
    INFO(s.message);
    REQUIRE(s.ok());
    return id;
}

// The ids channels_for answers, in its order.
std::vector<std::string> route(Fixture& f, std::string_view group, std::string_view model) {
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::array<ChannelView, 64> out;
    std::size_t n = r.channels_for(group, model, out);
    REQUIRE(n <= out.size());
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < n; ++i) ids.emplace_back(out[i].id());
    return ids;
}

}  // namespace

TEST_CASE("an added channel reads back with its parsed base URL and credential") {
    Fixture f;
    ChannelSpec spec = channel_spec("primary", {"gpt-4o"});
    spec.base_url = "http://LOCALHOST:8081/openai/";
    spec.type = ChannelType::anthropic;
    spec.max_concurrency = 3;
    spec.timeout_ms = 1500;
    std::string id = add(f, spec);
    CHECK(id.starts_with("c_"));
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    ChannelView c = r.channel_by_id(id);
    REQUIRE(c.valid());
    CHECK(c.name() == "primary");
    CHECK(c.type() == ChannelType::anthropic);
    CHECK(c.base_url() == "http://localhost:8081/openai");
    CHECK_FALSE(c.tls());
    CHECK(c.host() == "localhost");
    CHECK(c.port() == 8081);
    CHECK(c.path_prefix() == "/openai");
    CHECK(c.api_key() == "sk-test-123");
    CHECK(c.groups().text() == "default");
    CHECK(c.max_concurrency() == 3);
    CHECK(c.timeout_ms() == 1500);
    CHECK(c.enabled());
    CHECK(c.weight() == 1);
    CHECK(c.pass_headers() == 0);  // billing headers stay with the client unless allowed
    CHECK_FALSE(r.channel_by_id("c_missing").valid());
}

TEST_CASE("a channel's pass-headers survive the record, and an update can take them back") {
    Fixture f;
    ChannelSpec spec = channel_spec("billing", {"gpt-4o"});
    REQUIRE(parse_pass_headers("OpenAI-Project", spec.pass_headers).ok());
    std::string id = add(f, spec);
    {
        Reader r(*f.env);
        REQUIRE(r.renew().ok());
        ChannelView c = r.channel_by_id(id);
        REQUIRE(c.valid());
        CHECK(c.pass_headers() == kPassOpenAIProject);
        CHECK(spec_of(c).pass_headers == kPassOpenAIProject);
    }
    ChannelPatch patch;
    patch.pass_headers = std::uint8_t{0};
    CHECK_FALSE(patch.empty());
    REQUIRE(update_channel(*f.env, id, patch, f.now + 1).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK(r.channel_by_id(id).pass_headers() == 0);
}

TEST_CASE("inject-usage is off by default, survives the record, and an update turns it off again") {
    Fixture f;
    std::string plain = add(f, channel_spec("plain", {"gpt-4o"}));
    ChannelSpec spec = channel_spec("counted", {"gpt-4o"});
    spec.inject_usage = true;
    std::string id = add(f, spec);
    {
        Reader r(*f.env);
        REQUIRE(r.renew().ok());
        CHECK_FALSE(r.channel_by_id(plain).inject_usage());
        CHECK(r.channel_by_id(id).inject_usage());
        CHECK(spec_of(r.channel_by_id(id)).inject_usage);
        CHECK(r.channel_by_id(id).pass_headers() == 0);  // its byte is its own
    }
    ChannelPatch patch;
    patch.inject_usage = false;
    CHECK_FALSE(patch.empty());
    REQUIRE(update_channel(*f.env, id, patch, f.now + 1).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK_FALSE(r.channel_by_id(id).inject_usage());
}

TEST_CASE("channels_for answers the channels of a (group, model), lowest priority first") {
    Fixture f;
    std::string low = add(f, channel_spec("low", {"gpt-4o", "gpt-4o-mini"}, 5));
    std::string high = add(f, channel_spec("high", {"gpt-4o"}, -3));
    std::string mid = add(f, channel_spec("mid", {"gpt-4o"}, 0));
    ChannelSpec other_group = channel_spec("vip-only", {"gpt-4o"}, -10);
    other_group.groups = {"vip"};
    std::string vip = add(f, other_group);

    CHECK(route(f, "default", "gpt-4o") == std::vector<std::string>{high, mid, low});
    CHECK(route(f, "default", "gpt-4o-mini") == std::vector<std::string>{low});
    CHECK(route(f, "vip", "gpt-4o") == std::vector<std::string>{vip});
    CHECK(route(f, "default", "claude").empty());
    CHECK(route(f, "nogroup", "gpt-4o").empty());
    CHECK(route(f, "", "gpt-4o").empty());
    CHECK(route(f, std::string(200, 'g'), "gpt-4o").empty());
}

TEST_CASE("a channel in several groups routes for each; a model-map source routes too") {
    Fixture f;
    ChannelSpec spec = channel_spec("multi", {"claude-3"});
    spec.groups = {"default", "vip"};
    spec.model_map = {{"claude", "claude-3"}};
    std::string id = add(f, spec);
    CHECK(route(f, "default", "claude-3") == std::vector<std::string>{id});
    CHECK(route(f, "vip", "claude-3") == std::vector<std::string>{id});
    CHECK(route(f, "vip", "claude") == std::vector<std::string>{id});
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK(r.channel_by_id(id).model_map().map("claude") == "claude-3");
}

TEST_CASE("disabled channels are still answered, marked disabled") {
    Fixture f;
    std::string id = add(f, channel_spec("c", {"m"}));
    REQUIRE(set_channel_enabled(*f.env, id, false, f.now + 1).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::array<ChannelView, 4> out;
    REQUIRE(r.channels_for("default", "m", out) == 1);
    CHECK_FALSE(out[0].enabled());
    CHECK_FALSE(r.has_enabled_channel());
    r.reset();
    REQUIRE(set_channel_enabled(*f.env, id, true, f.now + 2).ok());
    REQUIRE(r.renew().ok());
    CHECK(r.has_enabled_channel());
    CHECK(r.channel_by_id(id).updated_at_ms() == f.now + 2);
}

TEST_CASE("channels_for counts every candidate but fills only the space given") {
    Fixture f;
    for (int i = 0; i < 10; ++i) add(f, channel_spec(rr::cat("c", std::to_string(i)), {"m"}, i));
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::array<ChannelView, 3> out;
    CHECK(r.channels_for("default", "m", out) == 10);
    CHECK(out[0].priority() == 0);
    CHECK(out[2].priority() == 2);
    CHECK(r.channels_for("default", "m", std::span<ChannelView>()) == 10);
}

TEST_CASE("update moves routes: new models, groups and priority take effect, old ones vanish") {
    Fixture f;
    std::string a = add(f, channel_spec("a", {"old-model"}, 1));
    std::string b = add(f, channel_spec("b", {"new-model"}, 2));
    ChannelPatch p;
    p.models = std::vector<std::string>{"new-model"};
    p.priority = 3;
    p.groups = std::vector<std::string>{"default", "vip"};
    REQUIRE(update_channel(*f.env, a, p, f.now + 1).ok());
    CHECK(route(f, "default", "old-model").empty());
    CHECK(route(f, "default", "new-model") == std::vector<std::string>{b, a});
    CHECK(route(f, "vip", "new-model") == std::vector<std::string>{a});
    ChannelPatch front;
    front.priority = -1;
    REQUIRE(update_channel(*f.env, a, front, f.now + 2).ok());
    CHECK(route(f, "default", "new-model") == std::vector<std::string>{a, b});
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK(r.channel_by_id(a).created_at_ms() == f.now);
    CHECK(r.channel_by_id(a).updated_at_ms() == f.now + 2);
}

TEST_CASE("an invalid update changes nothing; unknown ids are not_found") {
    Fixture f;
    std::string id = add(f, channel_spec("a", {"m"}));
    ChannelPatch p;
    p.weight = 0;
    p.models = std::vector<std::string>{"other"};
    CHECK(update_channel(*f.env, id, p, f.now).code == Errc::invalid);
    ChannelPatch url;
    url.base_url = "ftp://nope";
    CHECK(update_channel(*f.env, id, url, f.now).code == Errc::invalid);
    CHECK(route(f, "default", "m") == std::vector<std::string>{id});
    CHECK(route(f, "default", "other").empty());
    CHECK(update_channel(*f.env, "c_missing", ChannelPatch{}, f.now).code == Errc::not_found);
    CHECK(set_channel_enabled(*f.env, "c_missing", true, f.now).code == Errc::not_found);
    CHECK(remove_channel(*f.env, "c_missing", f.now).code == Errc::not_found);
}

TEST_CASE("an invalid channel is not added") {
    Fixture f;
    std::string id;
    ChannelSpec bad = channel_spec("a", {});
    CHECK(add_channel(*f.env, bad, f.now, id).code == Errc::invalid);
    CHECK(id.empty());
    Stats st;
    REQUIRE(f.env->stats(st).ok());
    CHECK(st.entries[static_cast<std::size_t>(Db::channels)] == 0);
    CHECK(st.entries[static_cast<std::size_t>(Db::channel_routes)] == 0);
}

TEST_CASE("a removed channel leaves no route behind") {
    Fixture f;
    ChannelSpec spec = channel_spec("gone", {"m1", "m2"});
    spec.groups = {"default", "vip"};
    spec.model_map = {{"alias", "m1"}};
    std::string id = add(f, spec);
    std::string stay = add(f, channel_spec("stay", {"m1"}));
    REQUIRE(remove_channel(*f.env, id, f.now).ok());
    CHECK(route(f, "default", "m1") == std::vector<std::string>{stay});
    CHECK(route(f, "vip", "m2").empty());
    CHECK(route(f, "default", "alias").empty());
    Stats st;
    REQUIRE(f.env->stats(st).ok());
    CHECK(st.entries[static_cast<std::size_t>(Db::channels)] == 1);
    CHECK(st.entries[static_cast<std::size_t>(Db::channel_routes)] == 1);
}

TEST_CASE("the models of a group are listed once each, sorted") {
    Fixture f;
    add(f, channel_spec("a", {"b-model", "a-model"}));
    add(f, channel_spec("b", {"a-model", "c-model"}));
    ChannelSpec vip = channel_spec("v", {"vip-model"});
    vip.groups = {"vip"};
    add(f, vip);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::vector<std::string> models;
    r.for_each_model_in_group("default", [&](std::string_view m) { models.emplace_back(m); });
    CHECK(models == std::vector<std::string>{"a-model", "b-model", "c-model"});
    models.clear();
    r.for_each_model_in_group("vip", [&](std::string_view m) { models.emplace_back(m); });
    CHECK(models == std::vector<std::string>{"vip-model"});
    models.clear();
    r.for_each_model_in_group("defaul", [&](std::string_view m) { models.emplace_back(m); });
    CHECK(models.empty());
}

TEST_CASE("random channel sets route exactly like a scan of every channel") {
    Fixture f;
    std::mt19937 rng(7);
    const std::vector<std::string> groups = {"default", "vip", "batch"};
    std::vector<std::string> models;
    for (int i = 0; i < 12; ++i) models.push_back(rr::cat("model-", std::to_string(i)));
    struct Expected {
        std::int32_t priority;
        std::string id;
        std::set<std::string> groups, models;
    };
    std::vector<Expected> all;
    for (int i = 0; i < 60; ++i) {
        ChannelSpec spec = channel_spec(rr::cat("c", std::to_string(i)), {});
        spec.groups.clear();
        for (const auto& g : groups)
            if (rng() % 2) spec.groups.push_back(g);
        if (spec.groups.empty()) spec.groups.push_back("default");
        for (const auto& m : models)
            if (rng() % 4 == 0) spec.models.push_back(m);
        if (spec.models.empty()) spec.models.push_back(models[rng() % models.size()]);
        spec.priority = static_cast<std::int32_t>(rng() % 7) - 3;
        std::string id = add(f, spec);
        all.push_back(
            {spec.priority, id, {spec.groups.begin(), spec.groups.end()}, {spec.models.begin(), spec.models.end()}});
    }
    for (const auto& g : groups) {
        for (const auto& m : models) {
            std::vector<std::pair<std::int32_t, std::string>> want;
            for (const auto& e : all)
                if (e.groups.count(g) && e.models.count(m)) want.emplace_back(e.priority, e.id);
            std::sort(want.begin(), want.end());
            std::vector<std::string> want_ids;
            for (auto& w : want) want_ids.push_back(w.second);
            CAPTURE(g);
            CAPTURE(m);
            CHECK(route(f, g, m) == want_ids);
        }
    }
}

TEST_CASE("channels_in_group answers each channel of a group once, whatever its models") {
    Fixture f;
    std::string a = add(f, channel_spec("a", {"gpt-4o", "gpt-4o-mini", "o3"}));
    std::string b = add(f, channel_spec("b", {"gpt-4o"}));
    ChannelSpec other_group = channel_spec("vip-only", {"gpt-4o"});
    other_group.groups = {"vip"};
    std::string vip = add(f, other_group);
    // A group whose name is a prefix of another's ("defaults" after "default").
    ChannelSpec longer = channel_spec("longer", {"gpt-4o"});
    longer.groups = {"defaults"};
    add(f, longer);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::array<ChannelView, 8> out;
    const std::size_t n = r.channels_in_group("default", out);
    REQUIRE(n == 2);
    std::vector<std::string> ids{std::string(out[0].id()), std::string(out[1].id())};
    std::sort(ids.begin(), ids.end());
    std::vector<std::string> want{a, b};
    std::sort(want.begin(), want.end());
    CHECK(ids == want);
    REQUIRE(r.channels_in_group("vip", out) == 1);
    CHECK(out[0].id() == vip);
    CHECK(r.channels_in_group("nobody", out) == 0);
    CHECK(r.channels_in_group("", out) == 0);
    std::array<ChannelView, 1> one;
    CHECK(r.channels_in_group("default", one) == 1);  // at most out.size()
}

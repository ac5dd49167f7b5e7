// Record layout: every record kind survives encode -> in-place view unchanged, and a
// view refuses bytes it does not understand.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "encode.hpp"
#include "ringrelay/store/records.hpp"

using namespace rr::store;

namespace {

KeyState sample_key() {
    KeyState k;
    k.id = "k_abcdefghijkl";
    k.spec.name = "ci bot";
    k.spec.group = "vip";
    k.spec.models = {"gpt-4o", "claude-3-5-sonnet"};
    k.spec.max_concurrency = 3;
    k.spec.max_wait = 7;
    k.spec.rpm = 60;
    k.spec.tpm = 100000;
    k.spec.quota = 5'000'000'000ULL;
    k.spec.expires_at_ms = 1'800'000'000'000LL;
    for (std::size_t i = 0; i < 32; ++i) {
        k.hash[i] = static_cast<std::uint8_t>(i);
        k.previous_hash[i] = static_cast<std::uint8_t>(255 - i);
    }
    k.created_at_ms = 1'700'000'000'000LL;
    k.updated_at_ms = 1'700'000'000'500LL;
    k.revoked = true;
    k.revoked_at_ms = 1'700'000'001'000LL;
    k.revoke_reason = "leaked in a log";
    k.has_previous = true;
    k.previous_grace_until_ms = 1'700'000'086'400LL;
    return k;
}

// The record copied to an odd address, as LMDB may hand it out (2-byte aligned only).
struct Unaligned {
    explicit Unaligned(const std::string& bytes) : storage(bytes.size() + 1, '\0') {
        std::memcpy(storage.data() + 1, bytes.data(), bytes.size());
    }
    const void* data() const { return storage.data() + 1; }
    std::string storage;
};

}  // namespace

TEST_CASE("a key record round-trips through its view, read at an unaligned address") {
    KeyState k = sample_key();
    std::string bytes = encode_key(k);
    Unaligned u(bytes);
    KeyView v = KeyView::from(u.data(), bytes.size());
    REQUIRE(v.valid());
    CHECK(v.id() == "k_abcdefghijkl");
    CHECK(v.name() == "ci bot");
    CHECK(v.group() == "vip");
    CHECK(v.models().text() == "gpt-4o,claude-3-5-sonnet");
    CHECK(v.max_concurrency() == 3);
    CHECK(v.max_wait() == 7);
    CHECK(v.rpm() == 60);
    CHECK(v.tpm() == 100000);
    CHECK(v.quota() == 5'000'000'000ULL);
    CHECK(v.expires_at_ms() == 1'800'000'000'000LL);
    CHECK(v.hash() == k.hash);
    CHECK(v.previous_hash() == k.previous_hash);
    CHECK(v.created_at_ms() == k.created_at_ms);
    CHECK(v.updated_at_ms() == k.updated_at_ms);
    CHECK(v.revoked());
    CHECK(v.revoked_at_ms() == k.revoked_at_ms);
    CHECK(v.revoke_reason() == "leaked in a log");
    CHECK(v.has_previous());
    CHECK(v.previous_grace_until_ms() == k.previous_grace_until_ms);
    KeyState back = state_of(v);
    CHECK(encode_key(back) == bytes);
}

TEST_CASE("a key's model list answers allows_model; an empty list allows every model") {
    KeyState k = sample_key();
    std::string bytes = encode_key(k);
    KeyView v = KeyView::from(bytes.data(), bytes.size());
    CHECK(v.allows_model("gpt-4o"));
    CHECK(v.allows_model("claude-3-5-sonnet"));
    CHECK_FALSE(v.allows_model("gpt-4"));
    CHECK_FALSE(v.allows_model("gpt-4o,claude-3-5-sonnet"));
    k.spec.models.clear();
    std::string open = encode_key(k);
    KeyView all = KeyView::from(open.data(), open.size());
    CHECK(all.models().empty());
    CHECK(all.allows_model("anything"));
}

TEST_CASE("a key alias record round-trips") {
    std::string bytes = encode_key_alias("k_abcdefghijkl", 10, 20);
    Unaligned u(bytes);
    KeyAliasView v = KeyAliasView::from(u.data(), bytes.size());
    REQUIRE(v.valid());
    CHECK(v.id() == "k_abcdefghijkl");
    CHECK(v.rotated_at_ms() == 10);
    CHECK(v.grace_until_ms() == 20);
    CHECK_FALSE(KeyView::from(bytes.data(), bytes.size()).valid());
}

TEST_CASE("a channel record round-trips, with host and path read inside the base URL") {
    ChannelSpec spec;
    spec.name = "primary";
    spec.type = ChannelType::anthropic;
    spec.base_url = "https://[2001:db8::5]:8443/proxy/v1/";
    spec.api_key = "sk-ant-xyz";
    spec.groups = {"default", "vip"};
    spec.models = {"claude-3", "claude-3-haiku"};
    spec.model_map = {{"claude", "claude-3"}, {"haiku", "claude-3-haiku"}};
    spec.weight = 5;
    spec.priority = -2;
    spec.enabled = false;
    spec.max_concurrency = 12;
    spec.timeout_ms = 4500;
    BaseUrl url;
    REQUIRE(parse_base_url(spec.base_url, url).ok());
    std::string bytes = encode_channel("c_0123456789ab", spec, url, 111, 222);
    Unaligned u(bytes);
    ChannelView v = ChannelView::from(u.data(), bytes.size());
    REQUIRE(v.valid());
    CHECK(v.id() == "c_0123456789ab");
    CHECK(v.name() == "primary");
    CHECK(v.type() == ChannelType::anthropic);
    CHECK(v.base_url() == "https://[2001:db8::5]:8443/proxy/v1");
    CHECK(v.tls());
    CHECK(v.host() == "2001:db8::5");
    CHECK(v.port() == 8443);
    CHECK(v.path_prefix() == "/proxy/v1");
    CHECK(v.api_key() == "sk-ant-xyz");
    CHECK(v.groups().text() == "default,vip");
    CHECK(v.models().contains("claude-3-haiku"));
    CHECK(v.model_map().map("claude") == "claude-3");
    CHECK(v.model_map().map("haiku") == "claude-3-haiku");
    CHECK(v.model_map().map("claude-3") == "claude-3");
    CHECK_FALSE(v.model_map().find("claude-3").has_value());
    CHECK(v.weight() == 5);
    CHECK(v.priority() == -2);
    CHECK_FALSE(v.enabled());
    CHECK(v.max_concurrency() == 12);
    CHECK(v.timeout_ms() == 4500);
    CHECK(v.created_at_ms() == 111);
    CHECK(v.updated_at_ms() == 222);
    ChannelSpec back = spec_of(v);
    BaseUrl back_url;
    REQUIRE(parse_base_url(back.base_url, back_url).ok());
    CHECK(encode_channel("c_0123456789ab", back, back_url, 111, 222) == bytes);
}

TEST_CASE("block and usage records round-trip") {
    auto prefix = rr::parse_ip_prefix("2001:db8::/32").value();
    std::uint8_t key[kMaxBlockKey];
    std::size_t key_size = block_key(prefix, key);
    CHECK(key_size == 18);
    std::string bytes = encode_block("scanner", 5, 9);
    BlockView b = BlockView::from(key, key_size, bytes.data(), bytes.size());
    REQUIRE(b.valid());
    CHECK(b.prefix() == prefix);
    CHECK(b.reason() == "scanner");
    CHECK(b.created_at_ms() == 5);
    CHECK(b.expires_at_ms() == 9);
    CHECK_FALSE(b.expired_at(8));
    CHECK(b.expired_at(9));
    std::string never = encode_block("", 5, 0);
    CHECK_FALSE(BlockView::from(key, key_size, never.data(), never.size()).expired_at(INT64_MAX));

    std::string usage = encode_usage(12, 3400, 77);
    UsageView u = UsageView::from(usage.data(), usage.size());
    REQUIRE(u.valid());
    CHECK(u.requests() == 12);
    CHECK(u.tokens() == 3400);
    CHECK(u.updated_at_ms() == 77);
    CHECK(UsageView().tokens() == 0);
}

TEST_CASE("block keys order by family, then prefix length, then address") {
    auto key_of = [](const char* text) {
        std::uint8_t key[kMaxBlockKey];
        std::size_t n = block_key(rr::parse_ip_prefix(text).value(), key);
        return std::string(reinterpret_cast<const char*>(key), n);
    };
    CHECK(key_of("255.0.0.0/8") < key_of("1.0.0.0/16"));
    CHECK(key_of("1.0.0.0/16") < key_of("2.0.0.0/16"));
    CHECK(key_of("255.255.255.255") < key_of("::/0"));
}

TEST_CASE("a block key that is malformed gives an invalid view") {
    std::string bytes = encode_block("x", 1, 0);
    std::uint8_t bad_family[6] = {5, 8, 10, 0, 0, 0};
    CHECK_FALSE(BlockView::from(bad_family, 6, bytes.data(), bytes.size()).valid());
    std::uint8_t bad_length[6] = {4, 33, 10, 0, 0, 0};
    CHECK_FALSE(BlockView::from(bad_length, 6, bytes.data(), bytes.size()).valid());
    std::uint8_t short_key[4] = {4, 8, 10, 0};
    CHECK_FALSE(BlockView::from(short_key, 4, bytes.data(), bytes.size()).valid());
}

TEST_CASE("views refuse a wrong kind, an unknown version, a wrong size or a string outside the record") {
    std::string good = encode_key(sample_key());
    REQUIRE(KeyView::from(good.data(), good.size()).valid());

    std::string other_kind = encode_usage(1, 2, 3);
    CHECK_FALSE(KeyView::from(other_kind.data(), other_kind.size()).valid());

    std::string v2 = good;
    v2[1] = 2;
    CHECK_FALSE(KeyView::from(v2.data(), v2.size()).valid());

    CHECK_FALSE(KeyView::from(good.data(), good.size() - 1).valid());
    CHECK_FALSE(KeyView::from(good.data(), 4).valid());
    CHECK_FALSE(KeyView::from(nullptr, 0).valid());

    std::string longer = rr::cat(good, "x");
    CHECK_FALSE(KeyView::from(longer.data(), longer.size()).valid());

    // Point the name past the end of the record.
    std::string bad_ref = good;
    KeyRecordV1 rec;
    std::memcpy(&rec, bad_ref.data(), sizeof rec);
    rec.name.length = static_cast<std::uint32_t>(bad_ref.size());
    std::memcpy(bad_ref.data(), &rec, sizeof rec);
    CHECK_FALSE(KeyView::from(bad_ref.data(), bad_ref.size()).valid());

    // Point a string into the fixed part.
    std::string into_fixed = good;
    std::memcpy(&rec, into_fixed.data(), sizeof rec);
    rec.id.offset = 0;
    std::memcpy(into_fixed.data(), &rec, sizeof rec);
    CHECK_FALSE(KeyView::from(into_fixed.data(), into_fixed.size()).valid());
}

TEST_CASE("a record with a longer fixed part (a later minor layout) is still read") {
    // fixed_size says how far the strings start; extra fixed bytes are skipped.
    KeyState k = sample_key();
    std::string bytes = encode_key(k);
    KeyRecordV1 rec;
    std::memcpy(&rec, bytes.data(), sizeof rec);
    std::string padded(bytes.size() + 8, '\0');
    std::size_t fixed = sizeof rec;
    auto shift = [](StrRef& r) { r.offset += 8; };
    shift(rec.id);
    shift(rec.name);
    shift(rec.group);
    shift(rec.models);
    shift(rec.revoke_reason);
    rec.header.fixed_size = static_cast<std::uint16_t>(fixed + 8);
    rec.header.total_size = static_cast<std::uint32_t>(padded.size());
    std::memcpy(padded.data(), &rec, sizeof rec);
    std::memcpy(padded.data() + fixed + 8, bytes.data() + fixed, bytes.size() - fixed);
    KeyView v = KeyView::from(padded.data(), padded.size());
    REQUIRE(v.valid());
    CHECK(v.name() == "ci bot");
    CHECK(v.revoke_reason() == "leaked in a log");
}

TEST_CASE("a list view iterates its elements without allocating") {
    ListView l("a,bb,ccc");
    std::string joined;
    for (std::string_view s : l) joined += rr::cat(s, "|");
    CHECK(joined == "a|bb|ccc|");
    CHECK(l.size() == 3);
    CHECK(l.contains("bb"));
    CHECK_FALSE(l.contains("b"));
    CHECK(ListView("").size() == 0);
    CHECK(ListView("").begin() == ListView("").end());
    CHECK(ListView("solo").size() == 1);
}

TEST_CASE("channel types print and parse") {
    CHECK(to_string(ChannelType::openai) == "openai");
    CHECK(parse_channel_type("anthropic") == ChannelType::anthropic);
    CHECK_FALSE(parse_channel_type("OpenAI").has_value());
}

TEST_CASE("a channel's health check round-trips, and a record written before those fields reads them as off") {
    ChannelSpec spec;
    spec.name = "primary";
    spec.base_url = "http://127.0.0.1:9/v1";
    spec.api_key = "sk-1";
    spec.models = {"m"};
    spec.health_path = "/v1/models";
    spec.health_interval_ms = 2'000;
    spec.health_timeout_ms = 700;
    BaseUrl url;
    REQUIRE(parse_base_url(spec.base_url, url).ok());
    const std::string bytes = encode_channel("c_0123456789ab", spec, url, 1, 2);
    const Unaligned u(bytes);
    const ChannelView v = ChannelView::from(u.data(), bytes.size());
    REQUIRE(v.valid());
    CHECK(v.health_path() == "/v1/models");
    CHECK(v.health_interval_ms() == 2'000);
    CHECK(v.health_timeout_ms() == 700);
    CHECK(spec_of(v).health_path == "/v1/models");

    // The same record as an older build wrote it: the fixed part ends before the
    // health fields and the strings follow right after.
    ChannelSpec plain = spec;
    plain.health_path.clear();
    std::string current = encode_channel("c_0123456789ab", plain, url, 1, 2);
    const std::size_t cut = sizeof(ChannelRecordV1) - ChannelView::kBaseFixedSize;
    std::string old = current.substr(0, ChannelView::kBaseFixedSize) + current.substr(sizeof(ChannelRecordV1));
    RecordHeader h;
    std::memcpy(&h, old.data(), sizeof h);
    h.fixed_size = static_cast<std::uint16_t>(ChannelView::kBaseFixedSize);
    h.total_size = static_cast<std::uint32_t>(old.size());
    std::memcpy(old.data(), &h, sizeof h);
    ChannelRecordV1 fixed;
    std::memcpy(&fixed, current.data(), sizeof fixed);
    for (StrRef* r : {&fixed.id, &fixed.name, &fixed.base_url, &fixed.host, &fixed.path_prefix, &fixed.api_key,
                      &fixed.groups, &fixed.models, &fixed.model_map})
        r->offset -= static_cast<std::uint32_t>(cut);
    std::memcpy(old.data() + sizeof h, reinterpret_cast<const char*>(&fixed) + sizeof h,
                ChannelView::kBaseFixedSize - sizeof h);
    const ChannelView ov = ChannelView::from(old.data(), old.size());
    REQUIRE(ov.valid());
    CHECK(ov.name() == "primary");
    CHECK(ov.base_url() == "http://127.0.0.1:9/v1");
    CHECK(ov.health_path().empty());
    CHECK(spec_of(ov).health_interval_ms == kDefaultHealthIntervalMs);
    CHECK(spec_of(ov).health_timeout_ms == kDefaultHealthTimeoutMs);
    CHECK(ov.first_byte_timeout_ms() == kInheritTimeout);  // older than the field: inherits the server's
}

TEST_CASE("a channel's first-byte timeout round-trips as unset, a value or off") {
    ChannelSpec spec;
    spec.name = "primary";
    spec.base_url = "http://127.0.0.1:9/v1";
    spec.api_key = "sk-1";
    spec.models = {"m"};
    BaseUrl url;
    REQUIRE(parse_base_url(spec.base_url, url).ok());
    for (const std::uint32_t ms : {kInheritTimeout, 300u, kFirstByteTimeoutOff}) {
        CAPTURE(ms);
        spec.first_byte_timeout_ms = ms;
        CHECK(validate_channel_spec(spec).ok());
        const std::string bytes = encode_channel("c_0123456789ab", spec, url, 1, 2);
        const Unaligned u(bytes);
        const ChannelView v = ChannelView::from(u.data(), bytes.size());
        REQUIRE(v.valid());
        CHECK(v.first_byte_timeout_ms() == ms);
        CHECK(spec_of(v).first_byte_timeout_ms == ms);
    }
    ChannelSpec unset;
    CHECK(unset.first_byte_timeout_ms == kInheritTimeout);  // the default: the server's value
    ChannelPatch p;
    CHECK(p.empty());
    p.first_byte_timeout_ms = 500;
    CHECK_FALSE(p.empty());
    p.apply_to(spec);
    CHECK(spec.first_byte_timeout_ms == 500);
    spec.first_byte_timeout_ms = kMaxTimeoutMs + 1;
    CHECK_FALSE(validate_channel_spec(spec).ok());
}

TEST_CASE("a health path is empty (off) or an origin-form path without spaces") {
    CHECK(validate_health_path("").ok());
    CHECK(validate_health_path("/v1/models").ok());
    CHECK(validate_health_path("/health?deep=1").ok());
    CHECK_FALSE(validate_health_path("v1/models").ok());
    CHECK_FALSE(validate_health_path("/a b").ok());
    CHECK_FALSE(validate_health_path("/a#b").ok());
    CHECK_FALSE(validate_health_path("/a\r\nX-Evil: 1").ok());
    CHECK_FALSE(validate_health_path("/" + std::string(1024, 'a')).ok());
}

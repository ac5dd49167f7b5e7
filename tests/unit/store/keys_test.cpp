// Keys in a real environment: create, look up, classify, revoke, expire, rotate,
// update, usage, and snapshot isolation.
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "store_test_support.hpp"

using namespace rr::store;
using rr::store::test::Fixture;
using rr::store::test::key_spec;

namespace {

NewKey create(Fixture& f, const KeySpec& spec) {
    NewKey k;
    Status s = create_key(*f.env, spec, f.now, k);
    INFO(s.message);
    REQUIRE(s.ok());
    return k;
}

KeyStanding status_of(Fixture& f, const std::string& secret, std::int64_t at) {
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    return classify(r.find_key(hash_secret(secret)), at);
}

std::size_t count(Env& env, Db db) {
    Stats st;
    REQUIRE(env.stats(st).ok());
    return st.entries[static_cast<std::size_t>(db)];
}

}  // namespace

TEST_CASE("a created key is found by the hash of its secret, with every field") {
    Fixture f;
    KeySpec spec = key_spec("ci");
    spec.group = "vip";
    spec.models = {"gpt-4o"};
    spec.max_concurrency = 4;
    spec.max_wait = 2;
    spec.rpm = 60;
    spec.tpm = 1000;
    spec.quota = 5000;
    NewKey k = create(f, spec);
    CHECK(k.id.starts_with("k_"));
    CHECK(looks_like_secret(k.secret));

    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    KeyMatch m = r.find_key(hash_secret(k.secret));
    REQUIRE(m.key.valid());
    CHECK_FALSE(m.via_previous_secret);
    CHECK(m.key.id() == k.id);
    CHECK(m.key.name() == "ci");
    CHECK(m.key.group() == "vip");
    CHECK(m.key.allows_model("gpt-4o"));
    CHECK_FALSE(m.key.allows_model("gpt-4"));
    CHECK(m.key.max_concurrency() == 4);
    CHECK(m.key.max_wait() == 2);
    CHECK(m.key.rpm() == 60);
    CHECK(m.key.tpm() == 1000);
    CHECK(m.key.quota() == 5000);
    CHECK(m.key.created_at_ms() == f.now);
    CHECK(m.key.hash() == hash_secret(k.secret));
    CHECK(classify(m, f.now) == KeyStanding::ok);
    CHECK(r.key_by_id(k.id).valid());
    CHECK(r.key_by_id(k.id).name() == "ci");
}

TEST_CASE("defaults: group default, every model, one slot, no wait, no limits, no expiry") {
    Fixture f;
    NewKey k = create(f, key_spec("d"));
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    KeyView v = r.key_by_id(k.id);
    REQUIRE(v.valid());
    CHECK(v.group() == "default");
    CHECK(v.models().empty());
    CHECK(v.max_concurrency() == 1);
    CHECK(v.max_wait() == 0);
    CHECK(v.rpm() == 0);
    CHECK(v.quota() == 0);
    CHECK(v.expires_at_ms() == 0);
    CHECK_FALSE(v.expired_at(INT64_MAX));
}

TEST_CASE("an unknown secret, or an unknown id, is unknown") {
    Fixture f;
    create(f, key_spec("a"));
    CHECK(status_of(f, rr::cat("rr-", std::string(40, 'x')), f.now) == KeyStanding::unknown);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK_FALSE(r.key_by_id("k_doesnotexist").valid());
    CHECK(to_string(KeyStanding::unknown) == "unknown");
}

TEST_CASE("a key with an invalid spec is not created and nothing is written") {
    Fixture f;
    NewKey k;
    KeySpec bad = key_spec("");
    CHECK(create_key(*f.env, bad, f.now, k).code == Errc::invalid);
    bad = key_spec("x");
    bad.max_concurrency = 0;
    CHECK(create_key(*f.env, bad, f.now, k).code == Errc::invalid);
    CHECK(k.secret.empty());
    CHECK(count(*f.env, Db::keys) == 0);
    CHECK(count(*f.env, Db::key_ids) == 0);
}

TEST_CASE("a revoked key reads revoked from the next snapshot on, and unrevoke restores it") {
    Fixture f;
    NewKey k = create(f, key_spec("r"));
    REQUIRE(revoke_key(*f.env, k.id, "leaked", f.now + 5).ok());
    CHECK(status_of(f, k.secret, f.now + 6) == KeyStanding::revoked);
    {
        Reader r(*f.env);
        REQUIRE(r.renew().ok());
        KeyView v = r.key_by_id(k.id);
        CHECK(v.revoked());
        CHECK(v.revoked_at_ms() == f.now + 5);
        CHECK(v.revoke_reason() == "leaked");
    }
    // Revoking again keeps the first time; an empty reason keeps the old one.
    REQUIRE(revoke_key(*f.env, k.id, "", f.now + 9).ok());
    {
        Reader r(*f.env);
        REQUIRE(r.renew().ok());
        CHECK(r.key_by_id(k.id).revoked_at_ms() == f.now + 5);
        CHECK(r.key_by_id(k.id).revoke_reason() == "leaked");
    }
    REQUIRE(unrevoke_key(*f.env, k.id, f.now + 10).ok());
    CHECK(status_of(f, k.secret, f.now + 11) == KeyStanding::ok);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK(r.key_by_id(k.id).revoke_reason().empty());
    CHECK(r.key_by_id(k.id).revoked_at_ms() == 0);
}

TEST_CASE("a key expires at its expiry time, not a millisecond before") {
    Fixture f;
    KeySpec spec = key_spec("e");
    spec.expires_at_ms = f.now + 1000;
    NewKey k = create(f, spec);
    CHECK(status_of(f, k.secret, f.now) == KeyStanding::ok);
    CHECK(status_of(f, k.secret, f.now + 999) == KeyStanding::ok);
    CHECK(status_of(f, k.secret, f.now + 1000) == KeyStanding::expired);
}

TEST_CASE("revoked wins over expired") {
    Fixture f;
    KeySpec spec = key_spec("e");
    spec.expires_at_ms = f.now + 1;
    NewKey k = create(f, spec);
    REQUIRE(revoke_key(*f.env, k.id, "", f.now).ok());
    CHECK(status_of(f, k.secret, f.now + 100) == KeyStanding::revoked);
}

TEST_CASE("after a rotation the old secret works until the grace ends, then reads rotated_past_grace") {
    Fixture f;
    NewKey k = create(f, key_spec("rot"));
    std::string fresh;
    REQUIRE(rotate_key(*f.env, k.id, 60'000, f.now, fresh).ok());
    CHECK(looks_like_secret(fresh));
    CHECK(fresh != k.secret);

    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    KeyMatch old = r.find_key(hash_secret(k.secret));
    REQUIRE(old.key.valid());
    CHECK(old.via_previous_secret);
    CHECK(old.grace_until_ms == f.now + 60'000);
    CHECK(old.key.id() == k.id);
    CHECK(classify(old, f.now + 59'999) == KeyStanding::ok);
    CHECK(classify(old, f.now + 60'000) == KeyStanding::rotated_past_grace);

    KeyMatch now = r.find_key(hash_secret(fresh));
    REQUIRE(now.key.valid());
    CHECK_FALSE(now.via_previous_secret);
    CHECK(classify(now, f.now + 10'000'000) == KeyStanding::ok);
    CHECK(r.key_by_id(k.id).hash() == hash_secret(fresh));
    CHECK(r.key_by_id(k.id).has_previous());
    CHECK(r.key_by_id(k.id).previous_hash() == hash_secret(k.secret));
    CHECK(r.key_by_id(k.id).previous_grace_until_ms() == f.now + 60'000);
}

TEST_CASE("a rotation with no grace stops the old secret at once; a revoke reaches old secrets too") {
    Fixture f;
    NewKey k = create(f, key_spec("rot0"));
    std::string fresh;
    REQUIRE(rotate_key(*f.env, k.id, 0, f.now, fresh).ok());
    CHECK(status_of(f, k.secret, f.now) == KeyStanding::rotated_past_grace);
    std::string third;
    REQUIRE(rotate_key(*f.env, k.id, 3'600'000, f.now, third).ok());
    CHECK(status_of(f, fresh, f.now + 1) == KeyStanding::ok);
    REQUIRE(revoke_key(*f.env, k.id, "gone", f.now + 2).ok());
    CHECK(status_of(f, fresh, f.now + 3) == KeyStanding::revoked);
    CHECK(status_of(f, third, f.now + 3) == KeyStanding::revoked);
}

TEST_CASE("secrets rotated out earlier keep their own grace deadlines") {
    Fixture f;
    NewKey k = create(f, key_spec("twice"));
    std::string second;
    std::string third;
    REQUIRE(rotate_key(*f.env, k.id, 100'000, f.now, second).ok());
    REQUIRE(rotate_key(*f.env, k.id, 10'000, f.now + 1'000, third).ok());
    CHECK(status_of(f, k.secret, f.now + 50'000) == KeyStanding::ok);                // first grace: until +100s
    CHECK(status_of(f, second, f.now + 50'000) == KeyStanding::rotated_past_grace);  // second: until +11s
    CHECK(status_of(f, k.secret, f.now + 100'000) == KeyStanding::rotated_past_grace);
    CHECK(status_of(f, third, f.now + 1'000'000) == KeyStanding::ok);
}

TEST_CASE("rotate refuses a negative or over-long grace and an unknown id") {
    Fixture f;
    NewKey k = create(f, key_spec("g"));
    std::string s;
    CHECK(rotate_key(*f.env, k.id, -1, f.now, s).code == Errc::invalid);
    CHECK(rotate_key(*f.env, k.id, 366LL * 86'400'000, f.now, s).code == Errc::invalid);
    CHECK(rotate_key(*f.env, "k_missing", 0, f.now, s).code == Errc::not_found);
    CHECK(s.empty());
    CHECK(status_of(f, k.secret, f.now) == KeyStanding::ok);
}

TEST_CASE("update changes only the patched fields; a bad patch changes nothing") {
    Fixture f;
    KeySpec spec = key_spec("u");
    spec.models = {"gpt-4o"};
    NewKey k = create(f, spec);
    KeyPatch p;
    p.max_concurrency = 8;
    p.rpm = 30;
    p.name = "renamed";
    REQUIRE(update_key(*f.env, k.id, p, f.now + 1).ok());
    {
        Reader r(*f.env);
        REQUIRE(r.renew().ok());
        KeyView v = r.key_by_id(k.id);
        CHECK(v.name() == "renamed");
        CHECK(v.max_concurrency() == 8);
        CHECK(v.rpm() == 30);
        CHECK(v.models().text() == "gpt-4o");
        CHECK(v.updated_at_ms() == f.now + 1);
        CHECK(v.created_at_ms() == f.now);
    }
    KeyPatch bad;
    bad.max_concurrency = 0;
    bad.rpm = 99;
    CHECK(update_key(*f.env, k.id, bad, f.now + 2).code == Errc::invalid);
    KeyPatch clear_models;
    clear_models.models = std::vector<std::string>{};
    clear_models.expires_at_ms = f.now + 50;
    REQUIRE(update_key(*f.env, k.id, clear_models, f.now + 3).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    KeyView v = r.key_by_id(k.id);
    CHECK(v.rpm() == 30);
    CHECK(v.max_concurrency() == 8);
    CHECK(v.models().empty());
    CHECK(v.expires_at_ms() == f.now + 50);
    CHECK(update_key(*f.env, "k_missing", p, f.now).code == Errc::not_found);
}

TEST_CASE("usage accumulates per key id; unknown ids are skipped") {
    Fixture f;
    NewKey a = create(f, key_spec("a"));
    NewKey b = create(f, key_spec("b"));
    UsageDelta first[] = {{a.id, 1, 100}, {b.id, 2, 5}, {"k_nobody", 9, 9}};
    std::size_t applied = 0;
    REQUIRE(add_usage(*f.env, first, f.now, &applied).ok());
    CHECK(applied == 2);
    UsageDelta second[] = {{a.id, 3, 50}};
    REQUIRE(add_usage(*f.env, second, f.now + 10, &applied).ok());
    CHECK(applied == 1);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK(r.usage(a.id).requests() == 4);
    CHECK(r.usage(a.id).tokens() == 150);
    CHECK(r.usage(a.id).updated_at_ms() == f.now + 10);
    CHECK(r.usage(b.id).tokens() == 5);
    CHECK_FALSE(r.usage("k_nobody").valid());
    CHECK(r.usage("k_nobody").tokens() == 0);
}

TEST_CASE("a change is seen at the reader's next renew, with no reload") {
    Fixture f;
    NewKey a = create(f, key_spec("a"));
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    CHECK_FALSE(r.key_by_id(a.id).revoked());
    r.reset();  // env.hpp: never write on a thread whose Reader is active
    REQUIRE(revoke_key(*f.env, a.id, "", f.now).ok());
    NewKey b = create(f, key_spec("b"));
    REQUIRE(r.renew().ok());
    CHECK(r.key_by_id(a.id).revoked());
    CHECK(r.find_key(hash_secret(b.secret)).key.valid());
}

TEST_CASE("a snapshot held on another thread keeps its view of the data") {
    Fixture f;
    NewKey a = create(f, key_spec("a"));
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    KeyView before = r.key_by_id(a.id);
    REQUIRE(before.valid());
    std::thread writer([&] {
        CHECK(revoke_key(*f.env, a.id, "x", f.now).ok());
        NewKey b;
        CHECK(create_key(*f.env, key_spec("b"), f.now, b).ok());
    });
    writer.join();
    // Same snapshot: still not revoked, the new key invisible, the old view intact.
    CHECK_FALSE(r.key_by_id(a.id).revoked());
    CHECK_FALSE(before.revoked());
    CHECK(before.name() == "a");
    Stats st;
    REQUIRE(f.env->stats(st).ok());
    CHECK(st.entries[static_cast<std::size_t>(Db::key_ids)] == 2);
    std::size_t seen = 0;
    r.for_each_key([&](const KeyView&) { ++seen; });
    CHECK(seen == 1);
    REQUIRE(r.renew().ok());
    CHECK(r.key_by_id(a.id).revoked());
    seen = 0;
    r.for_each_key([&](const KeyView&) { ++seen; });
    CHECK(seen == 2);
}

TEST_CASE("for_each_key lists keys and skips rotated-out aliases") {
    Fixture f;
    NewKey a = create(f, key_spec("a"));
    create(f, key_spec("b"));
    std::string s;
    REQUIRE(rotate_key(*f.env, a.id, 1000, f.now, s).ok());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::vector<std::string> names;
    r.for_each_key([&](const KeyView& k) { names.emplace_back(k.name()); });
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"a", "b"});
    CHECK(count(*f.env, Db::keys) == 3);
}

TEST_CASE("create_key in a caller's transaction (bulk) and a duplicate secret") {
    Fixture f;
    std::string secret = rr::cat("rr-", std::string(40, 'A'));
    std::string id;
    REQUIRE(f.env->write([&](WriteTxn& txn) { return create_key(txn, key_spec("bulk"), secret, id); }, f.now).ok());
    CHECK(status_of(f, secret, f.now) == KeyStanding::ok);
    std::string id2;
    Status dup = f.env->write([&](WriteTxn& txn) { return create_key(txn, key_spec("dup"), secret, id2); }, f.now);
    CHECK(dup.code == Errc::invalid);
    Status shape =
        f.env->write([&](WriteTxn& txn) { return create_key(txn, key_spec("x"), "not-a-secret", id2); }, f.now);
    CHECK(shape.code == Errc::invalid);
    CHECK(count(*f.env, Db::key_ids) == 1);
}

// The environment: creation and permissions, the schema version check, map growth
// (within a process, with readers active, and by another process), backup, stats.
#include <doctest/doctest.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "store_test_support.hpp"

using namespace rr::store;
using rr::store::test::Fixture;
using rr::store::test::key_spec;
using rr::store::test::TempDir;

namespace {

constexpr std::uint64_t kTinyMap = 64 * 1024;

Env::Options tiny_map() {
    Env::Options o;
    o.initial_map_size = kTinyMap;
    return o;
}

// Writes meta/schema_version with raw LMDB, as another build might have.
void write_raw_meta(const std::string& dir, std::string_view value, bool drop_version = false) {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0600) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi meta = 0;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    MDB_val k{14, const_cast<char*>("schema_version")};
    if (drop_version) {
        REQUIRE(mdb_del(txn, meta, &k, nullptr) == 0);
    } else {
        MDB_val v{value.size(), const_cast<char*>(value.data())};
        REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
    }
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

std::string u32_bytes(std::uint32_t v) {
    std::string s(4, '\0');
    std::memcpy(s.data(), &v, 4);
    return s;
}

// Creates `count` keys in transactions of `batch`, named prefix + index.
Status bulk_keys(Env& env, int count, int batch, const std::string& prefix, std::int64_t now) {
    for (int done = 0; done < count; done += batch) {
        Status s = env.write(
            [&](WriteTxn& txn) {
                for (int i = done; i < std::min(count, done + batch); ++i) {
                    std::string secret;
                    if (Status g = generate_secret(secret); !g.ok()) return g;
                    std::string id;
                    if (Status c = create_key(txn, key_spec(prefix + std::to_string(i)), secret, id); !c.ok()) return c;
                }
                return Status{};
            },
            now);
        if (!s.ok()) return s;
    }
    return {};
}

std::size_t entries(Env& env, Db db) {
    Stats st;
    REQUIRE(env.stats(st).ok());
    return st.entries[static_cast<std::size_t>(db)];
}

}  // namespace

TEST_CASE("the data dir is created 0700 on first use, its files 0600") {
    TempDir d;
    std::unique_ptr<Env> env;
    REQUIRE(Env::open(d.sub("data"), env).ok());
    struct stat st {};
    REQUIRE(::stat(d.sub("data").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(::stat(d.sub("data/data.mdb").c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
    CHECK(env->dir() == d.sub("data"));
}

TEST_CASE("a reopened environment has the data written before, and schema version 1") {
    TempDir d;
    NewKey k;
    {
        std::unique_ptr<Env> env;
        REQUIRE(Env::open(d.sub("data"), env).ok());
        REQUIRE(create_key(*env, key_spec("kept"), 1, k).ok());
    }
    std::unique_ptr<Env> env;
    REQUIRE(Env::open(d.sub("data"), env).ok());
    Reader r(*env);
    REQUIRE(r.renew().ok());
    CHECK(r.key_by_id(k.id).name() == "kept");
    CHECK(r.schema_version() == kSchemaVersion);
}

TEST_CASE("an unknown schema version is refused with a clear error") {
    TempDir d;
    {
        std::unique_ptr<Env> env;
        REQUIRE(Env::open(d.sub("data"), env).ok());
    }
    write_raw_meta(d.sub("data"), u32_bytes(99));
    std::unique_ptr<Env> env;
    Status s = Env::open(d.sub("data"), env);
    CHECK(s.code == Errc::version);
    CHECK(s.message.find("99") != std::string::npos);
    CHECK(s.message.find("version 1") != std::string::npos);
    CHECK(env == nullptr);
}

TEST_CASE("a malformed or missing schema version with data present is corrupt") {
    TempDir d;
    {
        std::unique_ptr<Env> env;
        REQUIRE(Env::open(d.sub("data"), env).ok());
        NewKey k;
        REQUIRE(create_key(*env, key_spec("x"), 1, k).ok());
    }
    write_raw_meta(d.sub("data"), "ab");
    std::unique_ptr<Env> env;
    CHECK(Env::open(d.sub("data"), env).code == Errc::corrupt);
    write_raw_meta(d.sub("data"), "", true);
    CHECK(Env::open(d.sub("data"), env).code == Errc::corrupt);
}

TEST_CASE("a data path that is a file, or whose parent is missing, is an io error that says what to do") {
    TempDir d;
    std::ofstream(d.sub("file")) << "x";
    std::unique_ptr<Env> env;
    Status s = Env::open(d.sub("file"), env);
    CHECK(s.code == Errc::io);
    CHECK(s.message.find("not a directory") != std::string::npos);
    s = Env::open(d.sub("no/such/parent"), env);
    CHECK(s.code == Errc::io);
    CHECK(s.message.find("parent") != std::string::npos);
    ::mkdir(d.sub("bad").c_str(), 0700);
    std::ofstream(d.sub("bad/data.mdb")) << std::string(8192, 'z');
    s = Env::open(d.sub("bad"), env);
    CHECK(s.code == Errc::corrupt);
}

TEST_CASE("a data dir that is not writable is an io error naming the fix") {
    if (::geteuid() == 0) {
        MESSAGE("running as root: permissions do not stop root, nothing to test");
        return;
    }
    TempDir d;
    ::mkdir(d.sub("ro").c_str(), 0500);
    std::unique_ptr<Env> env;
    Status s = Env::open(d.sub("ro"), env);
    CHECK(s.code == Errc::io);
    CHECK(s.message.find("not writable") != std::string::npos);
}

TEST_CASE("a full map grows and the write goes through") {
    Fixture f(tiny_map());
    std::uint64_t before = f.env->map_size();
    CHECK(before == kTinyMap);
    REQUIRE(bulk_keys(*f.env, 3000, 250, "k", f.now).ok());
    CHECK(f.env->map_size() > before);
    CHECK(entries(*f.env, Db::key_ids) == 3000);
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    std::size_t n = 0;
    r.for_each_key([&](const KeyView& k) { n += k.name().starts_with("k") ? 1 : 0; });
    CHECK(n == 3000);
}

TEST_CASE("one write larger than twice the map still goes through") {
    Fixture f(tiny_map());
    REQUIRE(bulk_keys(*f.env, 2000, 2000, "big", f.now).ok());
    CHECK(entries(*f.env, Db::key_ids) == 2000);
    CHECK(f.env->map_size() >= 4 * kTinyMap);
}

TEST_CASE("readers on other threads keep reading correctly while the map grows under them") {
    Fixture f(tiny_map());
    NewKey known;
    REQUIRE(create_key(*f.env, key_spec("known"), f.now, known).ok());
    const Sha256 hash = hash_secret(known.secret);
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0};
    std::atomic<long> failures{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&] {
            Reader r(*f.env);
            while (!stop.load()) {
                if (!r.renew().ok()) {
                    ++failures;
                    continue;
                }
                KeyMatch m = r.find_key(hash);
                bool good = m.key.valid() && m.key.name() == "known" && m.key.id() == known.id;
                std::size_t count = 0;
                r.for_each_key([&](const KeyView& k) { count += k.id().size() == 14 ? 1 : 0; });
                if (!good || count == 0) ++failures;
                r.reset();
                ++reads;
            }
        });
    }
    // Written in batches, each after the readers have read again since the last one:
    // reads and growth interleave however busy the machine is (threads left waiting
    // for a CPU made "reads > 0" fail when the writes came first).
    Status s;
    int interleaved = 0;
    for (int batch = 0; batch < 40 && s.ok(); ++batch) {
        const long seen = reads.load();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (reads.load() == seen && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        if (reads.load() != seen) ++interleaved;
        std::string prefix = "g";
        prefix.append(std::to_string(batch)).append("-");
        s = bulk_keys(*f.env, 100, 100, prefix, f.now);
    }
    stop = true;
    for (auto& t : readers) t.join();
    REQUIRE(s.ok());
    CHECK(failures.load() == 0);
    CHECK(interleaved == 40);
    CHECK(f.env->map_size() > kTinyMap);
}

TEST_CASE("a map grown by another process is adopted by readers and writers here") {
    Fixture f(tiny_map());
    Reader r(*f.env);
    REQUIRE(r.renew().ok());
    r.reset();
    auto grow_in_child = [&](const std::string& prefix) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // The child opens its own Env (an MDB_env never crosses fork) and grows the map.
            std::unique_ptr<Env> env;
            bool ok = Env::open(f.dir.sub("data"), env, tiny_map()).ok() && bulk_keys(*env, 1500, 100, prefix, 1).ok();
            env.reset();
            ::_exit(ok ? 0 : 1);
        }
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
    };
    grow_in_child("child-a-");
    // Reader path: renew meets MDB_MAP_RESIZED and adopts the new size.
    REQUIRE(r.renew().ok());
    std::size_t seen = 0;
    r.for_each_key([&](const KeyView&) { ++seen; });
    CHECK(seen == 1500);
    r.reset();
    CHECK(f.env->map_size() > kTinyMap);

    grow_in_child("child-b-");
    // Writer path: the write transaction meets MDB_MAP_RESIZED first.
    NewKey k;
    REQUIRE(create_key(*f.env, key_spec("parent"), f.now, k).ok());
    CHECK(entries(*f.env, Db::key_ids) == 3001);
}

TEST_CASE("backup makes a compacted copy that opens as a data dir") {
    Fixture f;
    REQUIRE(bulk_keys(*f.env, 300, 300, "b", f.now).ok());
    std::string channel;
    REQUIRE(add_channel(*f.env, rr::store::test::channel_spec("c", {"m"}), f.now, channel).ok());
    // Free pages: a compacted copy leaves them out.
    std::vector<std::string> doomed;
    for (int i = 0; i < 200; ++i) {
        std::string id;
        REQUIRE(add_channel(*f.env, rr::store::test::channel_spec("tmp", {rr::cat("m", std::to_string(i))}), f.now, id)
                    .ok());
        doomed.push_back(id);
    }
    for (const auto& id : doomed) REQUIRE(remove_channel(*f.env, id, f.now).ok());

    std::string dest = f.dir.sub("backup");
    Status s = f.env->backup(dest);
    INFO(s.message);
    REQUIRE(s.ok());
    struct stat copy {};
    struct stat orig {};
    REQUIRE(::stat(rr::cat(dest, "/data.mdb").c_str(), &copy) == 0);
    REQUIRE(::stat(f.dir.sub("data/data.mdb").c_str(), &orig) == 0);
    CHECK((copy.st_mode & 077) == 0);
    CHECK(copy.st_size < orig.st_size);

    std::unique_ptr<Env> restored;
    REQUIRE(Env::open(dest, restored).ok());
    CHECK(entries(*restored, Db::key_ids) == 300);
    CHECK(entries(*restored, Db::channels) == 1);
    Reader r(*restored);
    REQUIRE(r.renew().ok());
    CHECK(r.channel_by_id(channel).name() == "c");

    Status again = f.env->backup(dest);
    CHECK(again.code == Errc::io);
    CHECK(again.message.find("already holds") != std::string::npos);
    CHECK(f.env->backup(f.dir.sub("missing/parent")).code == Errc::io);
}

TEST_CASE("a backup taken during writes is one consistent snapshot") {
    Fixture f;
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        int i = 0;
        while (!stop.load()) {
            NewKey k;
            CHECK(create_key(*f.env, key_spec(rr::cat("w", std::to_string(i++))), f.now, k).ok());
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Status s = f.env->backup(f.dir.sub("hot"));
    stop = true;
    writer.join();
    REQUIRE(s.ok());
    std::unique_ptr<Env> copy;
    REQUIRE(Env::open(f.dir.sub("hot"), copy).ok());
    Reader r(*copy);
    REQUIRE(r.renew().ok());
    std::size_t keys = 0;
    std::size_t consistent = 0;
    r.for_each_key([&](const KeyView& k) {
        ++keys;
        consistent += r.key_by_id(k.id()).valid() ? 1 : 0;
    });
    CHECK(keys == consistent);
    CHECK(keys == entries(*copy, Db::key_ids));
}

TEST_CASE("stats count the entries of every database") {
    Fixture f;
    NewKey k;
    REQUIRE(create_key(*f.env, key_spec("s"), f.now, k).ok());
    std::string rotated;
    REQUIRE(rotate_key(*f.env, k.id, 1000, f.now, rotated).ok());
    ChannelSpec spec = rr::store::test::channel_spec("c", {"m1", "m2"});
    std::string id;
    REQUIRE(add_channel(*f.env, spec, f.now, id).ok());
    REQUIRE(add_block(*f.env, rr::parse_ip_prefix("10.0.0.0/8").value(), "", 0, f.now).ok());
    UsageDelta d[] = {{k.id, 1, 2}};
    REQUIRE(add_usage(*f.env, d, f.now).ok());
    Stats st;
    REQUIRE(f.env->stats(st).ok());
    CHECK(st.schema_version == kSchemaVersion);
    CHECK(st.entries[static_cast<std::size_t>(Db::keys)] == 2);  // current + rotated-out alias
    CHECK(st.entries[static_cast<std::size_t>(Db::key_ids)] == 1);
    CHECK(st.entries[static_cast<std::size_t>(Db::channels)] == 1);
    CHECK(st.entries[static_cast<std::size_t>(Db::channel_routes)] == 2);
    CHECK(st.entries[static_cast<std::size_t>(Db::blocks)] == 1);
    CHECK(st.entries[static_cast<std::size_t>(Db::usage)] == 1);
    CHECK(st.entries[static_cast<std::size_t>(Db::meta)] == 1);
    CHECK(st.map_size == 64ull << 20);
    CHECK(st.map_used > 0);
    CHECK(st.map_used < st.map_size);
    CHECK(st.page_size >= 4096);
    CHECK(db_name(Db::channel_routes) == "channel_routes");
}

TEST_CASE("a write whose function fails commits nothing") {
    Fixture f;
    Status s = f.env->write(
        [&](WriteTxn& txn) {
            REQUIRE(txn.put(Db::usage, "k_x", "junk").ok());
            return Status::error(Errc::invalid, "changed my mind");
        },
        f.now);
    CHECK(s.code == Errc::invalid);
    CHECK(s.message == "changed my mind");
    CHECK(entries(*f.env, Db::usage) == 0);
}

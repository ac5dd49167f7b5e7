// Store lookups the server makes per request, from one warm read transaction:
//   - key by SHA-256 hash (find_key + classify) with 1,000,000 keys stored;
//   - channels for (group, model) with 1,000 channels;
//   - renew()+reset() of the read transaction itself.
// Reports median / p99 / mean in ns per lookup. Target (issue 4): key median < 300 ns.
//
// Usage: store-key-lookup-bench [KEYS] [DIR]   (defaults 1000000, a fresh temp dir)
// The timer (steady_clock, ~20 ns) is inside the per-lookup figures; its own cost is
// printed so it can be subtracted.
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <lmdb.h>

#include "ringrelay/store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
volatile std::size_t g_sink;
using rr::store::Status;

void die(const Status& s, const char* what) {
    if (s.ok()) return;
    std::fprintf(stderr, "store-key-lookup-bench: %s: %s\n", what, s.message.c_str());
    std::exit(1);
}

struct Summary {
    double median, p99, mean;
};

Summary summarize(std::vector<std::int64_t>& ns, double batch_mean) {
    std::sort(ns.begin(), ns.end());
    return {static_cast<double>(ns[ns.size() / 2]), static_cast<double>(ns[ns.size() * 99 / 100]), batch_mean};
}

// A deterministic secret per index: "rr-" + 40 base62 characters.
std::string secret_for(std::uint64_t i) {
    static constexpr char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string s(1, 'r');
    s += "r-";
    std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    for (int c = 0; c < 40; ++c) {
        s += digits[x % 62];
        x = x / 62 + (static_cast<std::uint64_t>(c) + i) * 0x100000001B3ull;
    }
    return s;
}

std::vector<rr::store::Sha256> load_keys(rr::store::Env& env, std::size_t count) {
    std::vector<rr::store::Sha256> hashes;
    hashes.reserve(count);
    rr::store::KeySpec spec;
    spec.name = "bench";
    spec.models = {"gpt-4o", "gpt-4o-mini"};
    const std::size_t batch = 20'000;
    for (std::size_t done = 0; done < count; done += batch) {
        std::size_t end = std::min(count, done + batch);
        die(env.write(
                [&](rr::store::WriteTxn& txn) {
                    for (std::size_t i = done; i < end; ++i) {
                        std::string id;
                        if (Status s = rr::store::create_key(txn, spec, secret_for(i), id); !s.ok()) return s;
                    }
                    return Status{};
                },
                rr::now_unix_ms()),
            "loading keys");
        for (std::size_t i = done; i < end; ++i) hashes.push_back(rr::store::hash_secret(secret_for(i)));
    }
    return hashes;
}

double timer_overhead_ns() {
    std::vector<std::int64_t> ns(100'000);
    for (auto& v : ns) {
        auto t0 = Clock::now();
        auto t1 = Clock::now();
        v = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    }
    std::sort(ns.begin(), ns.end());
    return static_cast<double>(ns[ns.size() / 2]);
}

// A dependent random read over `mib` MiB: what one cache-missing access costs on this
// machine, the floor under any lookup whose data is not in cache.
double memory_latency_ns(std::size_t mib) {
    std::size_t n = mib * 1024 * 1024 / 64;
    struct alignas(64) Line {
        std::size_t next;
    };
    std::vector<Line> lines(n);
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
    for (std::size_t i = 0; i < n; ++i) lines[order[i]].next = order[(i + 1) % n];
    std::size_t p = order[0];
    const std::size_t steps = 1'000'000;
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) p = lines[p].next;
    double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(steps);
    g_sink = p;  // keeps the chase from being optimised away
    return ns;
}

void print_tree_shape(rr::store::Env& env) {
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &txn) != 0) return;
    MDB_stat st{};
    if (mdb_stat(txn, env.dbi(rr::store::Db::keys), &st) == 0) {
        std::printf("keys database: depth %u, %zu branch pages, %zu leaf pages, %zu overflow pages (%.0f MiB)\n",
                    st.ms_depth, st.ms_branch_pages, st.ms_leaf_pages, st.ms_overflow_pages,
                    static_cast<double>((st.ms_branch_pages + st.ms_leaf_pages) * st.ms_psize) / 1048576.0);
    }
    mdb_txn_abort(txn);
}

// Times find_key + classify for `lookups` hashes drawn uniformly from `pool`.
Summary time_lookups(rr::store::Reader& reader, const std::vector<rr::store::Sha256>& pool, std::size_t lookups) {
    std::int64_t now = rr::now_unix_ms();
    std::mt19937_64 rng(11);
    std::vector<std::uint32_t> picks(lookups);
    for (auto& p : picks) p = static_cast<std::uint32_t>(rng() % pool.size());
    std::size_t ok = 0;
    for (std::uint32_t i : picks) ok += rr::store::classify(reader.find_key(pool[i]), now) == rr::store::KeyStanding::ok;
    std::vector<std::int64_t> ns(lookups);
    for (std::size_t n = 0; n < lookups; ++n) {
        auto t0 = Clock::now();
        auto status = rr::store::classify(reader.find_key(pool[picks[n]]), now);
        auto t1 = Clock::now();
        ok += status == rr::store::KeyStanding::ok;
        ns[n] = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    }
    auto b0 = Clock::now();
    for (std::uint32_t i : picks) ok += rr::store::classify(reader.find_key(pool[i]), now) == rr::store::KeyStanding::ok;
    double batch = std::chrono::duration<double, std::nano>(Clock::now() - b0).count() / static_cast<double>(lookups);
    if (ok != 3 * lookups) {
        std::fprintf(stderr, "store-key-lookup-bench: %zu lookups failed\n", 3 * lookups - ok);
        std::exit(1);
    }
    return summarize(ns, batch);
}

void bench_keys(rr::store::Env& env, const std::vector<rr::store::Sha256>& hashes) {
    print_tree_shape(env);
    rr::store::Reader reader(env);
    die(reader.renew(), "renew");
    std::printf("key lookup (find_key + classify) among %zu stored keys, from one warm read txn:\n", hashes.size());
    std::vector<rr::store::Sha256> shuffled = hashes;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(7));
    for (std::size_t active : {hashes.size(), std::size_t{10'000}, std::size_t{1'000}}) {
        if (active > hashes.size()) continue;
        std::vector<rr::store::Sha256> pool(shuffled.begin(), shuffled.begin() + static_cast<std::ptrdiff_t>(active));
        Summary s = time_lookups(reader, pool, std::min<std::size_t>(hashes.size(), 1'000'000));
        std::string label = active == hashes.size() ? std::string("uniform over all keys")
                                                    : rr::cat("hot set of ", std::to_string(active), " keys");
        std::printf("  %-26s median %5.0f ns   p99 %6.0f ns   mean %5.0f ns (untimed loop)\n", label.c_str(), s.median,
                    s.p99, s.mean);
    }
    std::vector<std::int64_t> renew_ns(200'000);
    for (auto& v : renew_ns) {
        auto t0 = Clock::now();
        reader.reset();
        die(reader.renew(), "renew");
        auto t1 = Clock::now();
        v = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    }
    Summary r = summarize(renew_ns, 0);
    std::printf("snapshot reset() + renew(): median %.0f ns   p99 %.0f ns\n", r.median, r.p99);
}

// 1,000 channels in 10 groups serving 200 models, 5 models each: ~2.5 candidates per
// (group, model). Plus 100 of them also in "default" serving "gpt-4o": a hot pair.
void bench_channels(rr::store::Env& env) {
    std::mt19937_64 rng(5);
    const int groups = 10;
    const int models = 200;
    for (int c = 0; c < 1000; c += 100) {
        die(env.write(
                [&](rr::store::WriteTxn& txn) {
                    for (int i = c; i < c + 100; ++i) {
                        rr::store::ChannelSpec spec;
                        spec.name = rr::cat("ch", std::to_string(i));
                        spec.base_url = rr::cat("https://upstream", std::to_string(i % 7), ".example.com/v1");
                        spec.api_key = "sk-bench";
                        spec.groups = {rr::cat("g", std::to_string(i % groups))};
                        if (i % 10 == 0) {
                            spec.groups.push_back("default");
                            spec.models.push_back("gpt-4o");
                        }
                        while (spec.models.size() < 5) {
                            std::string m = rr::cat("model-", std::to_string(rng() % models));
                            if (std::find(spec.models.begin(), spec.models.end(), m) == spec.models.end())
                                spec.models.push_back(m);
                        }
                        spec.priority = static_cast<std::int32_t>(rng() % 3);
                        std::string id;
                        if (Status s = rr::store::add_channel(txn, spec, id); !s.ok()) return s;
                    }
                    return Status{};
                },
                rr::now_unix_ms()),
            "loading channels");
    }
    rr::store::Reader reader(env);
    die(reader.renew(), "renew");
    std::array<rr::store::ChannelView, 128> out;
    auto run = [&](const char* label, auto pick) {
        const std::size_t n = 200'000;
        std::vector<std::int64_t> ns(n);
        std::size_t candidates = 0;
        for (std::size_t i = 0; i < n; ++i) {
            auto [group, model] = pick();
            auto t0 = Clock::now();
            std::size_t found = reader.channels_for(group, model, out);
            auto t1 = Clock::now();
            candidates += found;
            ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
        }
        Summary s = summarize(ns, 0);
        std::printf("  %-44s median %.0f ns   p99 %.0f ns   (%.1f candidates on average)\n", label, s.median, s.p99,
                    static_cast<double>(candidates) / static_cast<double>(n));
    };
    std::vector<std::string> group_names;
    std::vector<std::string> model_names;
    for (int g = 0; g < groups; ++g) group_names.push_back(rr::cat("g", std::to_string(g)));
    for (int m = 0; m < models; ++m) model_names.push_back(rr::cat("model-", std::to_string(m)));
    std::printf("channel lookup (channels_for), 1000 channels, one warm read txn:\n");
    run("random (group, model) of 10 x 200", [&] {
        return std::pair<std::string_view, std::string_view>(group_names[rng() % groups], model_names[rng() % models]);
    });
    run("hot pair (default, gpt-4o): 100 channels",
        [&] { return std::pair<std::string_view, std::string_view>("default", "gpt-4o"); });
    run("unserved model", [&] { return std::pair<std::string_view, std::string_view>("g1", "no-such-model"); });
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t keys = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    std::string dir;
    bool temporary = argc <= 2;
    if (temporary) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "rr-store-bench-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::perror("mkdtemp");
            return 1;
        }
        dir = tmpl;
    } else {
        dir = argv[2];
    }
    std::printf("timer overhead (included below): %.0f ns\n", timer_overhead_ns());
    std::printf(
        "machine: one dependent random read costs %.0f ns over 4 MiB, %.0f ns over 64 MiB, %.0f ns over 512 MiB\n",
        memory_latency_ns(4), memory_latency_ns(64), memory_latency_ns(512));
    {
        std::unique_ptr<rr::store::Env> env;
        die(rr::store::Env::open(rr::cat(dir, "/keys"), env), "open");
        auto t0 = Clock::now();
        auto hashes = load_keys(*env, keys);
        rr::store::Stats st;
        die(env->stats(st), "stats");
        std::printf("loaded %zu keys in %.1f s; map %.0f MiB, used %.0f MiB\n", keys,
                    std::chrono::duration<double>(Clock::now() - t0).count(),
                    static_cast<double>(st.map_size) / 1048576.0, static_cast<double>(st.map_used) / 1048576.0);
        bench_keys(*env, hashes);
    }
    {
        std::unique_ptr<rr::store::Env> env;
        die(rr::store::Env::open(rr::cat(dir, "/channels"), env), "open");
        bench_channels(*env);
    }
    if (temporary) std::filesystem::remove_all(dir);
    return 0;
}

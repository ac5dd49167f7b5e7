// A stream of committed writes for the crash test (tests/integration/
// test_store_concurrency.py): it prints "<n> <key id>" after each commit returns, so
// whatever it printed before a kill -9 must be in the store afterwards.
//
// Usage: store-stress-writer DATA_DIR COUNT [FIRST]   (keys are named stress-FIRST ...)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ringrelay/store.hpp"

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: store-stress-writer DATA_DIR COUNT [FIRST]\n");
        return 2;
    }
    std::unique_ptr<rr::store::Env> env;
    rr::store::Env::Options options;
    options.initial_map_size = 256 * 1024;  // small, so the stream crosses map growths too
    if (auto s = rr::store::Env::open(argv[1], env, options); !s.ok()) {
        std::fprintf(stderr, "store-stress-writer: %s\n", s.message.c_str());
        return 1;
    }
    long count = std::strtol(argv[2], nullptr, 10);
    long first = argc == 4 ? std::strtol(argv[3], nullptr, 10) : 0;
    for (long i = first; i < first + count; ++i) {
        rr::store::KeySpec spec;
        spec.name = rr::cat("stress-", std::to_string(i));
        spec.models = {rr::cat("m", std::to_string(i % 13))};
        rr::store::NewKey key;
        if (auto s = rr::store::create_key(*env, spec, rr::now_unix_ms(), key); !s.ok()) {
            std::fprintf(stderr, "store-stress-writer: %s\n", s.message.c_str());
            return 1;
        }
        rr::store::UsageDelta usage[] = {{key.id, 1, static_cast<std::uint64_t>(i)}};
        if (auto s = rr::store::add_usage(*env, usage, rr::now_unix_ms()); !s.ok()) {
            std::fprintf(stderr, "store-stress-writer: %s\n", s.message.c_str());
            return 1;
        }
        std::printf("%ld %s\n", i, key.id.c_str());
        std::fflush(stdout);
    }
    return 0;
}

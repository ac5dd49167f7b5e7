// Invariant checks for the fuzz targets: a broken invariant is a crash, so
// libFuzzer keeps the input that broke it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (0)

namespace rr::fuzz {

// True when view lies entirely inside buf (an empty view may sit at its end).
inline bool inside(std::string_view view, std::string_view buf) {
    const char* const begin = buf.data();
    const char* const end = buf.data() + buf.size();
    if (view.empty()) return view.data() == nullptr || (view.data() >= begin && view.data() <= end);
    return view.data() >= begin && view.data() + view.size() <= end;
}

// A cheap deterministic number from the input (FNV-1a), to pick split points
// that vary with the input but repeat for the same one.
inline std::uint64_t input_hash(std::string_view in) {
    std::uint64_t h = 1469598103934665603ull;
    for (const char c : in) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
}

}  // namespace rr::fuzz

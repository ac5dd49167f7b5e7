// libFuzzer target: gateway::UsageTap, the token-usage scanner over response bodies.
// The first byte picks the mode (odd: text/event-stream, even: JSON); a hash of the
// input picks where the rest is cut into separate feeds. Checks, besides memory
// safety (ASan/UBSan; every feed is its own exact-size copy, so a read past it is seen):
//  - fed whole or in any pieces, the tap reports the same usage (the relay feeds
//    whatever the upstream's reads and the chunked decoder hand it);
//  - result() is the same when asked in between (it does not change the state);
//  - found == false reads as all zeros; a found total without its own field is the
//    saturating sum of prompt and completion, so never below either of them unless
//    an explicit total_tokens was seen (see usage_tap.hpp).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "ringrelay/gateway/usage_tap.hpp"

using rr::gateway::TokenUsage;
using rr::gateway::UsageTap;

namespace {

bool same(const TokenUsage& a, const TokenUsage& b) {
    return a.found == b.found && a.prompt_tokens == b.prompt_tokens &&
           a.completion_tokens == b.completion_tokens && a.total_tokens == b.total_tokens;
}

TokenUsage tap(std::string_view body, bool sse, const std::vector<std::size_t>& cuts, bool ask_between) {
    UsageTap t(sse);
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : body.size();
        const std::string piece(body.substr(from, to - from));
        t.feed(piece);
        if (ask_between) {
            const TokenUsage a = t.result();
            FUZZ_CHECK(same(a, t.result()));
        }
        from = to;
    }
    FUZZ_CHECK(t.sse() == sse);
    return t.result();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool sse = (data[0] & 1) != 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::uint64_t hash = rr::fuzz::input_hash(body);

    const TokenUsage whole = tap(body, sse, {}, false);
    if (!whole.found) {
        FUZZ_CHECK(whole.prompt_tokens == 0 && whole.completion_tokens == 0 && whole.total_tokens == 0);
    }

    // Pieces of 1..16 bytes, and a second cut set of single bytes where the body is short.
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (!body.empty()) {
        hash = hash * 6364136223846793005ull + 1442695040888963407ull;
        at += 1 + (hash >> 33) % 16;
        if (at >= body.size()) break;
        cuts.push_back(at);
    }
    FUZZ_CHECK(same(tap(body, sse, cuts, true), whole));
    if (body.size() <= 512) {
        std::vector<std::size_t> bytes;
        for (std::size_t i = 1; i < body.size(); ++i) bytes.push_back(i);
        FUZZ_CHECK(same(tap(body, sse, bytes, false), whole));
    }
    return 0;
}

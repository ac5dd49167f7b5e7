// libFuzzer target: ChunkedDecoder. The input is a chunked body; a hash of it
// picks a max_body and the points where it is cut into separate reads. Checks,
// besides memory safety (ASan/UBSan):
//  - consumed <= input size for every feed, and every payload span lies inside
//    the bytes of that feed;
//  - decoded_bytes() equals the payload handed out and never exceeds max_body;
//  - fed whole or in pieces, the decoder hands out the same payload, ends (done or
//    error) at the same absolute byte with the same error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "ringrelay/http.hpp"

using namespace rr::http;
using rr::fuzz::inside;

namespace {

struct Outcome {
    std::string data;
    std::size_t end = 0;  // absolute offset where it finished (done) or failed
    bool done = false;
    Error error = Error::none;
};

Outcome decode(std::string_view body, const std::vector<std::size_t>& cuts, std::uint64_t max_body) {
    ChunkedDecoder dec(max_body);
    Outcome out;
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : body.size();
        // A separate exact-size copy per read, so ASan sees a read past it.
        const std::string piece_copy(body.substr(from, to - from));
        const std::string_view piece = piece_copy;
        const auto r = dec.feed(piece, [&out, piece](std::string_view span) {
            FUZZ_CHECK(!span.empty());
            FUZZ_CHECK(inside(span, piece));
            out.data.append(span);
        });
        FUZZ_CHECK(r.consumed <= piece.size());
        FUZZ_CHECK(dec.decoded_bytes() == out.data.size());
        FUZZ_CHECK(dec.decoded_bytes() <= max_body);
        FUZZ_CHECK(r.done == dec.done());
        if (r.error != Error::none) {
            FUZZ_CHECK(!r.done);
            FUZZ_CHECK(r.error == Error::bad_chunk || r.error == Error::body_too_large);
            out.error = r.error;
            out.end = from + r.consumed;
            return out;
        }
        if (r.done) {
            out.done = true;
            out.end = from + r.consumed;
            return out;
        }
        FUZZ_CHECK(r.consumed == piece.size());
        from = to;
    }
    out.end = body.size();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    std::uint64_t hash = rr::fuzz::input_hash(body);
    const std::uint64_t max_body = (hash & 1) ? UINT64_MAX : (hash >> 1) % 4096;

    const Outcome whole = decode(body, {}, max_body);
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (size > 0) {
        hash = hash * 6364136223846793005ull + 1442695040888963407ull;
        at += 1 + (hash >> 33) % 16;
        if (at >= size) break;
        cuts.push_back(at);
    }
    const Outcome split = decode(body, cuts, max_body);
    FUZZ_CHECK(split.data == whole.data);
    FUZZ_CHECK(split.done == whole.done);
    FUZZ_CHECK(split.error == whole.error);
    FUZZ_CHECK(split.end == whole.end);
    return 0;
}

// libFuzzer target: the admin API's request bodies (src/relay/admin_body.cpp). Every
// input goes to every parse_* as the body; for the endpoints that also read a query
// (rotate, block removal) the input is also split at its first '\n' into query and
// body. Checks, besides memory safety (ASan/UBSan):
//  - a parse answers true with no error, or false with an error to show the client;
//  - the same input parses the same way twice (no hidden state);
//  - what is accepted is valid for the store: a created key or channel passes the
//    store's validation, and so does a patch applied to a valid record (an accepted
//    PUT can never leave a record the store would refuse); a patch changes something;
//    a block's expiry is "never" or in the future; a rotate grace is 0..365d; a
//    backup path is absolute; a closed circuit has no period.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../../src/admin/api.hpp"
#include "fuzz_check.hpp"

using namespace rr::admin;
namespace store = rr::store;

namespace {

constexpr std::int64_t kNowMs = 1'750'000'000'000;

// A parse's answer and error agree; parsing again answers the same.
template <typename Parse>
bool checked(Parse&& parse) {
    std::string error;
    const bool ok = parse(error);
    FUZZ_CHECK(ok == error.empty());
    std::string again;
    FUZZ_CHECK(parse(again) == ok && again == error);
    return ok;
}

store::KeySpec valid_key() {
    store::KeySpec k;
    k.name = "fuzz";
    FUZZ_CHECK(store::validate_key_spec(k).ok());
    return k;
}

store::ChannelSpec valid_channel() {
    store::ChannelSpec c;
    c.name = "fuzz";
    c.base_url = "http://127.0.0.1:9";
    c.api_key = "sk-fuzz";
    c.models = {"gpt-4o"};
    FUZZ_CHECK(store::validate_channel_spec(c).ok());
    return c;
}

void keys(std::string_view body) {
    store::KeySpec created;
    if (checked([&](std::string& e) { created = {}; return parse_key_create(body, kNowMs, created, e); })) {
        FUZZ_CHECK(store::validate_key_spec(created).ok());
    }
    store::KeyPatch patch;
    if (checked([&](std::string& e) { patch = {}; return parse_key_patch(body, kNowMs, patch, e); })) {
        FUZZ_CHECK(!patch.empty());
        store::KeySpec k = valid_key();
        patch.apply_to(k);
        FUZZ_CHECK(store::validate_key_spec(k).ok());
    }
    std::string reason;
    if (checked([&](std::string& e) { reason.clear(); return parse_revoke(body, reason, e); })) {
        FUZZ_CHECK(store::validate_text("reason", reason).ok());
    }
}

void channels(std::string_view body) {
    store::ChannelSpec created;
    if (checked([&](std::string& e) { created = {}; return parse_channel_create(body, created, e); })) {
        FUZZ_CHECK(store::validate_channel_spec(created).ok());
    }
    store::ChannelPatch patch;
    if (checked([&](std::string& e) { patch = {}; return parse_channel_patch(body, patch, e); })) {
        FUZZ_CHECK(!patch.empty());
        store::ChannelSpec c = valid_channel();
        patch.apply_to(c);
        FUZZ_CHECK(store::validate_channel_spec(c).ok());
    }
    CircuitChange circuit;
    if (checked([&](std::string& e) { circuit = {}; return parse_circuit(body, circuit, e); })) {
        FUZZ_CHECK(circuit.for_ms >= 0);
        FUZZ_CHECK(circuit.open || circuit.for_ms == 0);
    }
}

void others(std::string_view query, std::string_view body) {
    std::int64_t grace = -1;
    if (checked([&](std::string& e) { grace = -1; return parse_rotate(query, body, grace, e); })) {
        FUZZ_CHECK(grace >= 0 && grace <= 365LL * 24 * 3600 * 1000);
    }
    BlockAdd block;
    if (checked([&](std::string& e) { block = {}; return parse_block_add(body, kNowMs, block, e); })) {
        FUZZ_CHECK(block.expires_at_ms == 0 || block.expires_at_ms > kNowMs);
    }
    rr::IpPrefix prefix;
    checked([&](std::string& e) { prefix = {}; return parse_block_remove(query, body, prefix, e); });
    std::string path;
    if (checked([&](std::string& e) { path.clear(); return parse_backup(body, path, e); })) {
        FUZZ_CHECK(!path.empty() && path.front() == '/');
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    keys(in);
    channels(in);
    others({}, in);
    if (const std::size_t nl = in.find('\n'); nl != std::string_view::npos) {
        others(in.substr(0, nl), in.substr(nl + 1));
    }
    return 0;
}

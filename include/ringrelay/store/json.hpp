// Records as JSON: the one rendering of keys, channels and blocks that both the CLI's
// `--json` output and the admin API answer with, so a script reads the same fields
// from either. Also the listing order both use.
//
// JsonWriter builds compact JSON (no spaces) into a string it owns; it allocates and
// may throw std::bad_alloc, nothing else. The caller is responsible for well-formed
// nesting (every begin_* has its end_*, key() only inside an object).
//
// LIFETIME. The record views passed in are read during the call only (see
// records.hpp); nothing is kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringrelay/common.hpp"
#include "ringrelay/store/reader.hpp"
#include "ringrelay/store/records.hpp"

namespace rr::store {

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view k);
    // A string; control characters, '"' and '\' escaped, other bytes as given (UTF-8).
    JsonWriter& str(std::string_view v);
    JsonWriter& num(std::uint64_t v);
    JsonWriter& num_signed(std::int64_t v);
    JsonWriter& boolean(bool v);
    JsonWriter& null();
    JsonWriter& time(std::int64_t unix_ms);  // RFC 3339 string; null for 0
    JsonWriter& list(const ListView& items);  // array of strings
    const std::string& text() const noexcept { return out_; }
    std::string take() noexcept { return std::move(out_); }

private:
    void separate();
    std::string out_;
    std::vector<bool> has_items_;
    bool after_key_ = false;
};

// "active", "revoked" or "expired" (revoked wins).
std::string_view key_status(const KeyView& k, std::int64_t now_ms) noexcept;

// {"id","name","group","models","max_concurrency","max_wait","rpm","tpm","quota",
//  "status","created_at","updated_at","expires_at","revoked","revoked_at",
//  "revoke_reason","previous_secret_valid_until","usage":{"requests","tokens"}}
void key_json(JsonWriter& j, const KeyView& k, const UsageView& u, std::int64_t now_ms);
// A key just created: {"id","name","secret"}. The only place a secret is shown.
void new_key_json(JsonWriter& j, std::string_view id, std::string_view name, std::string_view secret);
// A key just rotated: {"id","secret","previous_secret_valid_until"}.
void rotated_key_json(JsonWriter& j, std::string_view id, std::string_view secret, std::int64_t valid_until_ms);

// {"id","name","type","base_url","groups","models","model_map":{from:to},"weight",
//  "priority","enabled","max_concurrency","timeout_ms","pass_headers":[names],"inject_usage","created_at","updated_at"}
// plus "api_key" only when `reveal`. "timeout_ms" is null when unset (the server's
// --upstream-timeout applies); a caller that knows the server's value (the admin API,
// inside the server) passes it and gets "effective_timeout_ms" too. Likewise
// "first_byte_timeout_ms": null when unset (the server's --first-byte-timeout), 0
// when off for this channel, and "effective_first_byte_timeout_ms" (0 = off).
struct ServerTimeouts {
    std::uint64_t upstream_timeout_ms = 0;    // --upstream-timeout
    std::uint64_t first_byte_timeout_ms = 0;  // --first-byte-timeout (0 = off)
};
void channel_json(JsonWriter& j, const ChannelView& c, bool reveal,
                  std::optional<ServerTimeouts> server = std::nullopt);

// {"prefix","reason","created_at","expires_at","active"}
void block_json(JsonWriter& j, const BlockView& b, std::int64_t now_ms);
// A block just added: {"prefix","reason","expires_at"}.
void new_block_json(JsonWriter& j, const IpPrefix& prefix, std::string_view reason, std::int64_t expires_at_ms);

// A record just deleted: {"<field>": value, "removed": true}.
void removed_json(JsonWriter& j, std::string_view field, std::string_view value);

// Every key, oldest first (created_at, then id); every channel by priority, then age,
// then id. The views live as long as the reader's snapshot.
std::vector<KeyView> keys_in_list_order(Reader& reader);
std::vector<ChannelView> channels_in_list_order(Reader& reader);

}  // namespace rr::store

// Every change an operator can make, as library functions: the CLI calls them, the admin
// API will call the same ones, and the server's writer thread calls add_usage().
//
// Each mutation validates its input first (Errc::invalid, nothing written), then runs in
// one write transaction (Env::write: atomic, durable at return, map growth handled).
// Unknown ids answer Errc::not_found. Times are milliseconds since the Unix epoch.
//
// create_key and add_channel also come in a WriteTxn& form that works inside a caller's
// transaction, for batches (imports, the benchmark's bulk load).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringrelay/common.hpp"
#include "ringrelay/store/env.hpp"
#include "ringrelay/store/records.hpp"

namespace rr::store {

// --- secrets and ids (wolfSSL RNG and SHA-256) ---

inline constexpr std::string_view kSecretPrefix = "rr-";
inline constexpr std::size_t kSecretRandomChars = 40;

// "rr-" + 40 base62 characters from wolfSSL's DRBG, each character uniform over the
// 62 (rejection sampling). Errors: io when the RNG cannot be seeded.
Status generate_secret(std::string& out);
// `prefix` + `count` base62 characters ("k_" + 12 for keys, "c_" + 12 for channels).
Status generate_id(std::string_view prefix, std::size_t count, std::string& out);
// SHA-256 of the secret's bytes (nettle: SHA-NI where the CPU has it, ~60 ns for 43 bytes),
// cheap enough for every request, so no secret is ever kept to skip it.
Sha256 hash_secret(std::string_view secret) noexcept;
// True when `text` has the shape of a secret ("rr-" + 40 base62): a cheap pre-check.
bool looks_like_secret(std::string_view text) noexcept;

// --- validation of single values (also used by the CLI before it opens the store) ---

inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxReasonBytes = 256;
inline constexpr std::size_t kMaxModelBytes = 128;
inline constexpr std::size_t kMaxGroupBytes = 64;
inline constexpr std::size_t kMaxListItems = 256;
inline constexpr std::size_t kMaxCredentialBytes = 1024;
inline constexpr std::uint32_t kMaxTimeoutMs = 24u * 3600 * 1000;
// A channel's timeout_ms when the operator set none: the server's --upstream-timeout.
// Records written before this existed hold 30000 when the operator gave no timeout,
// indistinguishable from an explicit 30s: they keep it (set it back with
// `channel update --timeout inherit`).
inline constexpr std::uint32_t kInheritTimeout = 0;
// A channel's first_byte_timeout_ms that turns the server's --first-byte-timeout off
// for it (kInheritTimeout, 0, inherits the server's).
inline constexpr std::uint32_t kFirstByteTimeoutOff = 0xffff'ffff;

// A display name: 1..64 bytes of UTF-8 without control characters.
Status validate_name(std::string_view what, std::string_view name);
// Free text (reasons): 0..256 bytes of UTF-8 without control characters.
Status validate_text(std::string_view what, std::string_view text);
// A group: 1..64 of [A-Za-z0-9_.-].
Status validate_group(std::string_view group);
// A model name: 1..128 of [A-Za-z0-9_.:/@+-].
Status validate_model(std::string_view model);
// An upstream credential: 1..1024 visible ASCII characters (it goes into a header).
Status validate_credential(std::string_view credential);

// "a,b" -> {"a","b"} with each element validated; duplicates dropped; "" -> {}.
Status parse_model_list(std::string_view csv, std::vector<std::string>& out);
Status parse_group_list(std::string_view csv, std::vector<std::string>& out);
// "OpenAI-Organization,OpenAI-Project" (names case-insensitive; "" or "none": none)
// -> PassHeader bits; any other name is an error.
Status parse_pass_headers(std::string_view csv, std::uint8_t& bits);
// PassHeader bits as their header names, comma-separated; "" for none.
std::string pass_headers_text(std::uint8_t bits);

// "a=b,c=d" -> {{"a","b"},{"c","d"}}; both sides are model names; a source named
// twice is an error.
Status parse_model_map(std::string_view text, std::vector<std::pair<std::string, std::string>>& out);

// A channel's base URL, taken apart. Accepted: http:// or https://, a host (DNS name,
// IPv4, or [IPv6]), an optional port 1..65535, an optional path prefix; no userinfo,
// query or fragment. Trailing slashes are dropped ("https://h/v1/" -> "https://h/v1"),
// the scheme and host lower-cased.
struct BaseUrl {
    bool tls = false;
    std::string host;         // without brackets
    std::uint16_t port = 0;   // explicit, or 80 / 443
    std::string path_prefix;  // "" or "/x/y"
    std::string normalized;   // the URL as stored
    // Offsets of host and path_prefix inside `normalized`.
    std::size_t host_offset = 0;
    std::size_t path_offset = 0;
};
Status parse_base_url(std::string_view text, BaseUrl& out);

// --- keys ---

struct KeySpec {
    std::string name;
    std::string group = "default";
    std::vector<std::string> models;  // empty = every model
    std::uint32_t max_concurrency = 1;
    std::uint32_t max_wait = 0;
    std::uint32_t rpm = 0;           // 0 = unlimited
    std::uint64_t tpm = 0;           // 0 = unlimited
    std::uint64_t quota = 0;         // tokens; 0 = unlimited
    std::int64_t expires_at_ms = 0;  // 0 = never
};

// A partial change: only the fields that are set change. create uses it over defaults.
struct KeyPatch {
    std::optional<std::string> name;
    std::optional<std::string> group;
    std::optional<std::vector<std::string>> models;
    std::optional<std::uint32_t> max_concurrency;
    std::optional<std::uint32_t> max_wait;
    std::optional<std::uint32_t> rpm;
    std::optional<std::uint64_t> tpm;
    std::optional<std::uint64_t> quota;
    std::optional<std::int64_t> expires_at_ms;  // 0 clears

    void apply_to(KeySpec& spec) const;
    bool empty() const noexcept;
};

// Errors (invalid): bad name, group or model; max_concurrency 0; expires_at negative.
Status validate_key_spec(const KeySpec& spec);
KeySpec spec_of(const KeyView& key);

struct NewKey {
    std::string id;
    std::string secret;  // shown once; only its hash is stored
};

Status create_key(Env& env, const KeySpec& spec, std::int64_t now_ms, NewKey& out);
// With a caller-made secret (bulk load): the secret must look like one.
Status create_key(WriteTxn& txn, const KeySpec& spec, std::string_view secret, std::string& id_out);
Status update_key(Env& env, std::string_view id, const KeyPatch& patch, std::int64_t now_ms);
// Revoking a revoked key keeps its first revoked_at and replaces the reason if given.
Status revoke_key(Env& env, std::string_view id, std::string_view reason, std::int64_t now_ms);
Status unrevoke_key(Env& env, std::string_view id, std::int64_t now_ms);
// A new secret; the current one keeps working for `grace_ms` (0: stops at once), then
// reads as rotated_past_grace. Secrets rotated out earlier keep their own deadlines.
Status rotate_key(Env& env, std::string_view id, std::int64_t grace_ms, std::int64_t now_ms, std::string& new_secret);

// --- channels ---

inline constexpr std::uint32_t kDefaultHealthIntervalMs = 10'000;
inline constexpr std::uint32_t kDefaultHealthTimeoutMs = 5'000;
inline constexpr std::uint32_t kMinHealthIntervalMs = 1'000;  // the checker's tick
inline constexpr std::size_t kMaxHealthPathBytes = 1024;

// A health-check path: "" (off), or "/" then visible ASCII (no space, no '#'), at
// most 1024 bytes; a query is allowed ("/health?deep=1").
Status validate_health_path(std::string_view path);

struct ChannelSpec {
    std::string name;
    ChannelType type = ChannelType::openai;
    std::string base_url;
    std::string api_key;
    std::vector<std::string> groups{"default"};
    std::vector<std::string> models;
    std::vector<std::pair<std::string, std::string>> model_map;
    std::uint32_t weight = 1;
    std::int32_t priority = 0;
    bool enabled = true;
    std::uint32_t max_concurrency = 0;  // 0 = unlimited
    // 0 = unset: the running server's --upstream-timeout applies (a value the operator
    // did not give must not override the server's; see kInheritTimeout).
    std::uint32_t timeout_ms = kInheritTimeout;
    std::uint8_t pass_headers = 0;  // PassHeader bits: client billing headers that reach this upstream
    // OpenAI chat/completions streams sent here ask for usage (stream_options.include_usage),
    // so TPM and quota see their tokens; the client then gets the extra usage chunk.
    bool inject_usage = false;
    // Active health check (off while health_path is empty): GET base URL path +
    // health_path every interval, each within its timeout.
    std::string health_path;
    std::uint32_t health_interval_ms = kDefaultHealthIntervalMs;
    std::uint32_t health_timeout_ms = kDefaultHealthTimeoutMs;
    // Connect + response head (SSE: + first body byte) within this, or the attempt
    // goes to another channel. kInheritTimeout: the server's --first-byte-timeout;
    // kFirstByteTimeoutOff: off for this channel.
    std::uint32_t first_byte_timeout_ms = kInheritTimeout;
};

struct ChannelPatch {
    std::optional<std::string> name;
    std::optional<ChannelType> type;
    std::optional<std::string> base_url;
    std::optional<std::string> api_key;
    std::optional<std::vector<std::string>> groups;
    std::optional<std::vector<std::string>> models;
    std::optional<std::vector<std::pair<std::string, std::string>>> model_map;
    std::optional<std::uint32_t> weight;
    std::optional<std::int32_t> priority;
    std::optional<bool> enabled;
    std::optional<std::uint32_t> max_concurrency;
    std::optional<std::uint32_t> timeout_ms;  // kInheritTimeout sets it back to unset
    std::optional<std::uint8_t> pass_headers;
    std::optional<bool> inject_usage;
    std::optional<std::string> health_path;  // "" turns checks off
    std::optional<std::uint32_t> health_interval_ms;
    std::optional<std::uint32_t> health_timeout_ms;
    std::optional<std::uint32_t> first_byte_timeout_ms;  // kInheritTimeout / kFirstByteTimeoutOff as in ChannelSpec

    void apply_to(ChannelSpec& spec) const;
    bool empty() const noexcept;
};

// Errors (invalid): bad name, URL, credential (1..1024 visible ASCII), groups (at least
// one), models (at least one), model map, weight 0, timeout over 24h, a bad
// health path, a health interval under 1s or over 24h, a health timeout 0 or over 24h,
// a first-byte timeout over 24h (other than kFirstByteTimeoutOff).
Status validate_channel_spec(const ChannelSpec& spec);
ChannelSpec spec_of(const ChannelView& channel);

// The channel serves (for routing) every model it lists and every model-map source.
Status add_channel(Env& env, const ChannelSpec& spec, std::int64_t now_ms, std::string& id_out);
Status add_channel(WriteTxn& txn, const ChannelSpec& spec, std::string& id_out);
Status update_channel(Env& env, std::string_view id, const ChannelPatch& patch, std::int64_t now_ms);
Status set_channel_enabled(Env& env, std::string_view id, bool enabled, std::int64_t now_ms);
Status remove_channel(Env& env, std::string_view id, std::int64_t now_ms);

// --- blocks ---

// Adds or replaces the block for `prefix`. expires_at_ms 0 = never.
Status add_block(Env& env, const IpPrefix& prefix, std::string_view reason, std::int64_t expires_at_ms,
                 std::int64_t now_ms);
// not_found when no block has exactly this prefix.
Status remove_block(Env& env, const IpPrefix& prefix, std::int64_t now_ms);

// --- usage (the server's writer thread) ---

struct UsageDelta {
    std::string_view key_id;  // borrowed for the call
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
};

// Adds every delta in one transaction. Deltas for ids with no key are skipped (a key
// cannot be deleted, so that is only a caller's mistake); `applied` counts the rest.
Status add_usage(Env& env, std::span<const UsageDelta> deltas, std::int64_t now_ms, std::size_t* applied = nullptr);

// --- response routes (the server's writer thread; docs/OPERATIONS.md, "Response affinity") ---

// Longer ids are not stored (nor looked up): OpenAI's are "resp_" + 48 hex digits.
inline constexpr std::size_t kMaxResponseIdBytes = 200;

struct ResponseRoute {
    std::string_view id;          // the upstream's response id ("resp_...")
    std::string_view channel_id;  // the channel that answered it
    std::string_view key_id;      // the gateway key that asked for it
    std::int64_t expires_at_ms = 0;
};

// Stores every route in one transaction (a route for an id already stored replaces it).
Status put_response_routes(Env& env, std::span<const ResponseRoute> routes, std::int64_t now_ms);
// Deletes the routes expired at now_ms (and any record this build cannot read).
Status prune_response_routes(Env& env, std::int64_t now_ms, std::size_t* pruned = nullptr);

}  // namespace rr::store

// ServeSettings: every knob of `ringrelay serve` (parsed by server/settings.hpp's
// resolve_settings). The relay reads its timeouts and limits from here.
//
// A plain value: filled and validated once at start-up, then read-only, shared by
// reference by every shard for the server's life (so any thread may read it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rr::relay {

enum class Mode { gateway, relay };

// Where the gateway reads a request's session from (--session-from), in order: the
// first one present names the session, and a session keeps its channel while that
// channel is usable (the upstream's prompt cache keeps hitting).
struct SessionSource {
    enum Kind : std::uint8_t {
        prompt_cache_key,  // body "prompt_cache_key" (OpenAI Responses/chat; Codex sets it)
        metadata_user_id,  // body "metadata": {"user_id": ...} (Anthropic; Claude Code sets it)
        header,            // a request header, by name
    } kind = header;
    std::string header_name;  // kind == header
};

// The default list, and the parser of --session-from ("none" turns sessions off).
std::vector<SessionSource> default_session_sources();
bool parse_session_sources(std::string_view list, std::vector<SessionSource>& out, std::string& error);

struct ServeSettings {
    std::string listen = "0.0.0.0:8080";
    std::string admin_listen = "127.0.0.1:9090";
    // The admin listener leaves loopback only with TLS, or with admin_insecure (the
    // operator accepts the token and ?reveal=true credentials in clear text).
    std::string admin_tls_cert;
    std::string admin_tls_key;
    bool admin_insecure = false;
    unsigned shards = 0;  // 0 = online CPUs
    Mode mode = Mode::gateway;
    std::string upstream;  // relay mode only
    std::string config_file;
    std::string log_file;
    std::string log_level = "info";
    // The listener's certificates: --tls-cert/--tls-key pairs, repeatable (in the
    // config file, arrays); the first pair is the default, the others are chosen by
    // SNI. tls_cert/tls_key are the first pair.
    std::string tls_cert;
    std::string tls_key;
    std::vector<std::string> tls_certs;
    std::vector<std::string> tls_keys;
    std::string upstream_ca;  // extra PEM CA file trusted for https upstreams (besides the system's)
    std::string data_dir;

    std::uint32_t upstream_max_concurrent = 64;
    std::uint32_t upstream_max_queue = 1024;
    std::uint64_t upstream_queue_timeout_ms = 30'000;
    std::uint64_t upstream_timeout_ms = 30'000;
    // Connect + response head (and, for an SSE answer, its first body byte) within
    // this, or the attempt is cut and the request goes to another channel, even a
    // POST: the operator's choice. 0 = off (only upstream_timeout_ms applies).
    std::uint64_t first_byte_timeout_ms = 0;
    std::uint64_t stream_idle_timeout_ms = 120'000;
    std::uint64_t header_timeout_ms = 10'000;
    std::uint64_t keepalive_timeout_ms = 75'000;
    std::uint64_t max_body = 8ull << 20;
    std::uint32_t retries = 2;
    // Send a non-idempotent request (POST, PATCH) again after the upstream may have
    // read it (no answer, timeout, 5xx, cut short). Off: only when it provably did not
    // (connect failed, pooled connection found closed, its own 429/503).
    bool retry_non_idempotent = false;
    // Gateway: POST /v1/messages/count_tokens neither counts toward the key's RPM nor
    // takes one of its concurrency slots (it still needs the key, its quota and TPM
    // room, and an upstream token).
    bool count_tokens_exempt = true;
    std::vector<SessionSource> session_sources = default_session_sources();
    std::uint64_t drain_timeout_ms = 30'000;
    // How long the channel that created a /v1/responses response stays its route for
    // GET/DELETE /v1/responses/{id}... (docs/OPERATIONS.md, "Response affinity"); 0: off.
    std::uint64_t response_affinity_ttl_ms = 30ull * 86'400'000;
};

}  // namespace rr::relay

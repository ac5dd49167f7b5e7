// Reading the store: the lookups the server makes on every request, and the listings the
// CLI and the admin API show.
//
// A Reader owns one LMDB read-only transaction (the environment is opened MDB_NOTLS,
// so a transaction belongs to the Reader, not to a thread). The server keeps one Reader
// per shard and brackets each request's lookups with renew() ... reset(): renewing a
// reset transaction costs a few stores into the lock file, where opening one costs a
// malloc and a reader-slot search. Between renew() and reset() the Reader sees one
// consistent snapshot; a change committed by the CLI is seen at the next renew().
//
// LIFETIME. Every view a Reader returns points into the LMDB map and is valid until
// this Reader's next reset() or renew() (or its destruction). Keep a Reader renewed
// only for the synchronous part of a request (see env.hpp: map growth waits for it).
//
// Threads. A Reader is used by one thread at a time. Several Readers of one Env may be
// active at once on different threads. A Reader must not outlive its Env.
//
// Costs (1,000,000 keys, warm, see docs/BENCHMARKS.md): find_key is one B-tree search;
// channels_for is one search in channel_routes plus one per candidate; find_block is
// two searches per prefix length in use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "ringrelay/common.hpp"
#include "ringrelay/store/env.hpp"
#include "ringrelay/store/records.hpp"

struct MDB_cursor;

namespace rr::store {

// What the server tells a client about the key it presented.
enum class KeyStanding : std::uint8_t {
    ok,
    unknown,             // no such secret: invalid_api_key
    revoked,             // key_revoked
    expired,             // past expires_at: key_expired
    rotated_past_grace,  // an old secret after its rotation grace ended: key_expired
};
std::string_view to_string(KeyStanding s) noexcept;

// The result of looking a secret's hash up.
struct KeyMatch {
    KeyView key;                       // !valid() when the hash is unknown
    bool via_previous_secret = false;  // the hash is a secret a rotation replaced
    std::int64_t grace_until_ms = 0;   // when via_previous_secret: end of its grace
};

// Classifies a match at `now_ms`. Order: unknown, revoked, rotated_past_grace, expired.
KeyStanding classify(const KeyMatch& match, std::int64_t now_ms) noexcept;

class Reader {
public:
    // Registers with `env` (no transaction yet: the first renew() begins one).
    explicit Reader(Env& env);
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Starts a fresh snapshot (resetting the current one first if it is active).
    // Handles MDB_MAP_RESIZED by adopting the grown map. Errors: io (reader table
    // full, MDB_PANIC ...). On error the Reader is inactive.
    Status renew() noexcept;
    // Ends the snapshot; every view from it becomes invalid. Cheap; idempotent.
    void reset() noexcept;
    bool active() const noexcept { return active_; }

    // --- hot path: no allocation, no exceptions; the Reader must be active ---

    KeyMatch find_key(const Sha256& hash) const noexcept;
    KeyView key_by_id(std::string_view id) const noexcept;
    ChannelView channel_by_id(std::string_view id) const noexcept;

    // Every channel listed for (group, model) -- enabled or not, so a caller can tell
    // "no channel serves it" from "none is enabled" -- in ascending priority, then id.
    // Fills out[0 .. min(n, out.size())) and returns n, the number of candidates.
    std::size_t channels_for(std::string_view group, std::string_view model, std::span<ChannelView> out) noexcept;

    // Every channel listed for some model of `group`, each once (for requests that name
    // no model: GET /v1/responses/{id}), in model order. Fills out and returns how many;
    // at most out.size().
    std::size_t channels_in_group(std::string_view group, std::span<ChannelView> out) noexcept;

    // The most specific unexpired block containing `addr` (IPv4-mapped IPv6 addresses
    // match IPv4 blocks), or an invalid view when none does.
    BlockView find_block(const IpAddress& addr, std::int64_t now_ms) noexcept;

    // The route stored for a response id (expired or not: see expired_at), or an
    // invalid view when none is.
    ResponseRouteView response_route(std::string_view id) const noexcept;

    // The usage counters of a key id (an invalid view reads as zeros).
    UsageView usage(std::string_view key_id) const noexcept;

    // --- listings (CLI, admin API, /v1/models) ---

    // fn(view) for each record, in database key order. Key aliases are skipped.
    void for_each_key(const std::function<void(const KeyView&)>& fn);
    void for_each_channel(const std::function<void(const ChannelView&)>& fn);
    void for_each_block(const std::function<void(const BlockView&)>& fn);
    // Every model some channel of `group` lists (each once, sorted), enabled or not.
    void for_each_model_in_group(std::string_view group, const std::function<void(std::string_view)>& fn);
    bool has_enabled_channel();

    // The schema version recorded in the snapshot (0 if none).
    std::uint32_t schema_version() const noexcept;

    Env& env() noexcept { return env_; }

private:
    bool get(Db db, std::string_view key, std::string_view& value) const noexcept;
    MDB_cursor* cursor(Db db) noexcept;
    bool enter() noexcept;
    void leave() noexcept;

    Env& env_;
    Env::ReaderSlot slot_;
    MDB_txn* txn_ = nullptr;
    bool active_ = false;
    // Cursors kept across snapshots; renewed on first use in each snapshot.
    MDB_cursor* routes_cursor_ = nullptr;
    MDB_cursor* blocks_cursor_ = nullptr;
    bool routes_fresh_ = false;
    bool blocks_fresh_ = false;
};

// renew() on construction, reset() on destruction: one request's snapshot.
class ReadScope {
public:
    explicit ReadScope(Reader& r) noexcept : reader_(r), status_(r.renew()) {}
    ~ReadScope() { reader_.reset(); }
    ReadScope(const ReadScope&) = delete;
    ReadScope& operator=(const ReadScope&) = delete;
    const Status& status() const noexcept { return status_; }
    bool ok() const noexcept { return status_.ok(); }

private:
    Reader& reader_;
    Status status_;
};

}  // namespace rr::store

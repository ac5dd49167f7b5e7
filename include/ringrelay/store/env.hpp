// The LMDB environment: opening, the write path, map growth, backup and statistics.
//
// One environment per data directory (--data), shared by every process that manages it:
// the server (its shard readers and its one writer thread) and any number of CLI runs.
// LMDB serialises writers across processes; readers never block and never wait.
//
// Named databases (docs/ARCHITECTURE.md, "The store"):
//   keys            SHA-256(secret) -> key record, or a key-alias record for a hash that
//                   a rotation replaced (it points at the key id and carries the grace)
//   key_ids         key id -> SHA-256 of the current secret
//   channels        channel id -> channel record
//   channel_routes  "group\0model" -> (sortable priority, channel id), MDB_DUPSORT: the
//                   secondary index that makes channels-for-(group, model) O(log n)
//   blocks          family|length|network -> block record
//   usage           key id -> usage counters
//   meta            "schema_version" -> uint32
//   responses       OpenAI response id -> response route (channel id, key id, expiry):
//                   where GET/DELETE /v1/responses/{id} go (response affinity)
//
// Map size. The map starts small (Options::initial_map_size) and a write that finds it
// full (MDB_MAP_FULL) doubles it and runs again; a write never fails for want of map.
// Growing remaps the file, which would pull the map from under any read transaction
// of this process, so Env parks its Readers first: a remap waits until every Reader
// of this Env is between reset() and renew(). Hence two rules for callers:
//   - keep a Reader active (renewed) only for the synchronous part of a request;
//   - never call Env::write (or any mutation), nor construct or destroy a Reader, on a
//     thread whose Reader is active.
// Another process may grow the map too; a Reader or writer that then sees
// MDB_MAP_RESIZED adopts the new size the same way and carries on.
//
// Ownership. Open one Env per data directory per process (LMDB forbids opening one
// environment twice in a process, and an Env never crosses fork()); destroy its
// Readers before it.
//
// Errors. Every call that can fail answers a Status (Errc plus a one-line message
// naming the LMDB call and error); a Status that is not ok() means nothing of that
// write was committed. The store throws nothing of its own; an exception thrown by
// the caller's write function aborts the transaction and passes through.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct MDB_env;
struct MDB_txn;

namespace rr::store {

inline constexpr std::uint32_t kSchemaVersion = 1;

enum class Errc : std::uint8_t {
    ok = 0,
    invalid,    // a value failed validation; nothing was written
    not_found,  // no record with that id / prefix
    version,    // the data directory has a schema version this build does not read
    corrupt,    // a record or the file is not what this build wrote
    io,         // the OS or LMDB refused (permissions, disk full, too many readers ...)
};

// The outcome of a store operation. `message` is one sentence for an operator that says
// what went wrong and what to do; it is empty when ok.
struct Status {
    Errc code = Errc::ok;
    std::string message;

    bool ok() const noexcept { return code == Errc::ok; }
    static Status success() { return {}; }
    static Status error(Errc code, std::string message) { return {code, std::move(message)}; }
};

// The databases, in the order of Env's handle table.
enum class Db : std::uint8_t { keys, key_ids, channels, channel_routes, blocks, usage, meta, responses };
inline constexpr std::size_t kDbCount = 8;
std::string_view db_name(Db db) noexcept;

struct Stats {
    std::uint32_t schema_version = 0;
    std::uint64_t map_size = 0;  // bytes reserved for the map
    std::uint64_t map_used = 0;  // bytes of the map holding pages
    std::uint32_t page_size = 0;
    std::uint32_t readers_used = 0;
    std::uint32_t max_readers = 0;
    std::uint64_t entries[kDbCount] = {};  // per Db
};

class Env;

// A write transaction handed to the function given to Env::write. Reads through it see
// the transaction's own writes. Byte spans returned by get() point into the map or
// into LMDB's dirty pages: valid until the next put/del on that database.
class WriteTxn {
public:
    // The value under `key`, or nullopt when absent.
    std::optional<std::span<const std::byte>> get(Db db, std::string_view key);
    // Stores `value` under `key` (for channel_routes: adds the duplicate).
    Status put(Db db, std::string_view key, std::string_view value);
    // Deletes `key` (all its duplicates when value is empty) or, for channel_routes, one
    // (key, value) pair. Deleting what is not there is not an error.
    Status del(Db db, std::string_view key, std::string_view value = {});
    // Deletes every entry of `db` for which pred(key, value) is true (a cursor walk of
    // the whole database: for sweeps, not for the hot path); *erased counts them.
    Status erase_where(Db db, const std::function<bool(std::string_view, std::span<const std::byte>)>& pred,
                       std::size_t* erased = nullptr);
    std::int64_t now_ms() const noexcept { return now_ms_; }
    Env& env() noexcept { return env_; }

private:
    friend class Env;
    WriteTxn(Env& env, MDB_txn* txn, std::int64_t now_ms) noexcept : env_(env), txn_(txn), now_ms_(now_ms) {}
    Status fail(int rc, std::string_view what);
    Env& env_;
    MDB_txn* txn_;
    std::int64_t now_ms_;
    bool map_full_ = false;  // set by any call that met MDB_MAP_FULL: Env::write grows and retries
};

class Env {
public:
    struct Options {
        std::uint64_t initial_map_size = 64ull << 20;  // at least this; a larger size recorded in the file wins
        unsigned max_readers = 510;                    // LMDB reader slots, shared by all processes
    };

    // Opens (creating on first use, mode 0700, with data files 0600) the environment in
    // `dir`, opens the named databases and checks the schema version.
    // Errors: io (cannot create / not writable: the message names the directory and
    // the OS reason), version (unknown schema version), corrupt (not an LMDB file).
    static Status open(const std::string& dir, std::unique_ptr<Env>& out, const Options& options);
    static Status open(const std::string& dir, std::unique_ptr<Env>& out) { return open(dir, out, Options{}); }
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    // Runs `fn` in one write transaction and commits when it returns ok; aborts and
    // returns its status otherwise. `fn` may run more than once (after a map growth or
    // a resize by another process): it must derive everything from the transaction it
    // is given and set its outputs on every run. Thread-safe; writes of this process
    // are serialised, and LMDB serialises them with other processes'.
    Status write(const std::function<Status(WriteTxn&)>& fn, std::int64_t now_ms);

    // A consistent, compacted copy of the environment (mdb_env_copy2, MDB_CP_COMPACT)
    // into directory `dest_dir` (created 0700 if missing; must not hold a data.mdb).
    // Safe while other processes read and write. The copy is a data directory.
    Status backup(const std::string& dest_dir);

    Status stats(Stats& out);

    const std::string& dir() const noexcept { return dir_; }
    // Bytes currently reserved for the map (takes the write lock: not a hot-path call).
    std::uint64_t map_size();
    MDB_env* raw() noexcept { return env_; }
    unsigned dbi(Db db) const noexcept { return dbis_[static_cast<std::size_t>(db)]; }

private:
    friend class Reader;
    friend class WriteTxn;
    Env() = default;
    Status open_databases();
    Status check_schema(MDB_txn* txn, int& put_rc);
    std::uint64_t map_size_locked() const noexcept;
    Status write_once(const std::function<Status(WriteTxn&)>& fn, std::int64_t now_ms, bool& map_full, bool& resized);
    // Remaps with `new_size` (0: adopt the size recorded in the file) once every Reader
    // of this Env is parked. Caller holds write_mu_.
    Status remap_locked(std::uint64_t new_size);
    // For a Reader that met MDB_MAP_RESIZED.
    Status adopt_grown_map();

    struct alignas(64) ReaderSlot {
        std::atomic<bool> active{false};
    };
    void register_reader(ReaderSlot* slot);
    void unregister_reader(ReaderSlot* slot);

    MDB_env* env_ = nullptr;
    std::string dir_;
    unsigned dbis_[kDbCount] = {};
    std::mutex write_mu_;
    std::mutex readers_mu_;
    std::vector<ReaderSlot*> readers_;
    std::atomic<bool> remapping_{false};
};

}  // namespace rr::store

// The environment: open, schema check, the write path with map growth, remaps that
// park this process's readers, backup and statistics.
#include "ringrelay/store/env.hpp"

#include "ringrelay/common.hpp"

#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace rr::store {
namespace {

constexpr std::string_view kSchemaKey = "schema_version";
constexpr int kMaxWriteAttempts = 48;  // 64 KiB doubled 48 times is far past any disk

constexpr std::string_view kDbNames[kDbCount] = {"keys",   "key_ids", "channels", "channel_routes",
                                                 "blocks", "usage",   "meta",     "responses"};

MDB_val as_val(std::string_view s) noexcept {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string lmdb_reason(int rc) {
    return mdb_strerror(rc);
}

Status io_error(std::string_view what, int rc) {
    return Status::error(Errc::io, cat(what, ": ", lmdb_reason(rc)));
}

// Maps an open failure to a sentence that says what to do.
Status open_error(const std::string& dir, int rc) {
    switch (rc) {
        case EACCES:
        case EPERM:
        case EROFS:
            return Status::error(Errc::io, cat("data dir ", dir, " is not writable (", lmdb_reason(rc),
                                               "): fix its permissions or pass --data DIR"));
        case MDB_INVALID:
            return Status::error(
                Errc::corrupt,
                cat("data dir ", dir,
                    " holds a data.mdb that is not an LMDB file: pass --data naming a ringrelay data dir"));
        case MDB_VERSION_MISMATCH:
            return Status::error(
                Errc::version,
                cat("data dir ", dir,
                    " was written by an incompatible LMDB version: use the ringrelay build that wrote it"));
        default: return io_error(cat("cannot open data dir ", dir), rc);
    }
}

Status prepare_dir(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            return Status::error(Errc::io, cat(dir, " is not a directory: pass --data DIR naming a directory"));
        }
        if (::access(dir.c_str(), W_OK | X_OK) != 0) {
            return Status::error(Errc::io, cat("data dir ", dir, " is not writable (", std::strerror(errno),
                                               "): fix its permissions or pass --data DIR"));
        }
        return {};
    }
    if (errno != ENOENT) {
        return Status::error(Errc::io,
                             cat("cannot use data dir ", dir, " (", std::strerror(errno), "): pass --data DIR"));
    }
    if (::mkdir(dir.c_str(), 0700) != 0) {
        return Status::error(Errc::io, cat("cannot create data dir ", dir, " (", std::strerror(errno),
                                           "): create its parent directory or pass --data DIR"));
    }
    return {};
}

}  // namespace

std::string_view db_name(Db db) noexcept {
    return kDbNames[static_cast<std::size_t>(db)];
}

// --- WriteTxn ---

Status WriteTxn::fail(int rc, std::string_view what) {
    if (rc == MDB_MAP_FULL) map_full_ = true;
    return io_error(cat("cannot ", what, " in ", env_.dir()), rc);
}

std::optional<std::span<const std::byte>> WriteTxn::get(Db db, std::string_view key) {
    MDB_val k = as_val(key);
    MDB_val v{};
    if (mdb_get(txn_, env_.dbi(db), &k, &v) != 0) return std::nullopt;
    return std::span<const std::byte>(static_cast<const std::byte*>(v.mv_data), v.mv_size);
}

Status WriteTxn::put(Db db, std::string_view key, std::string_view value) {
    MDB_val k = as_val(key);
    MDB_val v = as_val(value);
    int rc = mdb_put(txn_, env_.dbi(db), &k, &v, 0);
    if (rc == MDB_KEYEXIST) return {};  // the same duplicate is already in channel_routes
    if (rc != 0) return fail(rc, cat("write ", std::string(db_name(db))));
    return {};
}

Status WriteTxn::del(Db db, std::string_view key, std::string_view value) {
    MDB_val k = as_val(key);
    MDB_val v = as_val(value);
    int rc = mdb_del(txn_, env_.dbi(db), &k, value.empty() ? nullptr : &v);
    if (rc == MDB_NOTFOUND) return {};
    if (rc != 0) return fail(rc, cat("delete from ", std::string(db_name(db))));
    return {};
}

Status WriteTxn::erase_where(Db db, const std::function<bool(std::string_view, std::span<const std::byte>)>& pred,
                             std::size_t* erased) {
    std::size_t count = 0;
    if (erased != nullptr) *erased = 0;
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(txn_, env_.dbi(db), &c);
    if (rc != 0) return fail(rc, cat("walk ", std::string(db_name(db))));
    MDB_val k{};
    MDB_val v{};
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
        if (!pred(key, std::span<const std::byte>(static_cast<const std::byte*>(v.mv_data), v.mv_size))) continue;
        rc = mdb_cursor_del(c, 0);
        if (rc != 0) break;
        ++count;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, cat("delete from ", std::string(db_name(db))));
    if (erased != nullptr) *erased = count;
    return {};
}

// --- Env ---

Env::~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
}

Status Env::open(const std::string& dir, std::unique_ptr<Env>& out, const Options& options) {
    if (Status s = prepare_dir(dir); !s.ok()) return s;
    std::unique_ptr<Env> env(new Env());
    env->dir_ = dir;
    int rc = mdb_env_create(&env->env_);
    if (rc != 0) return io_error("cannot create an LMDB environment", rc);
    mdb_env_set_maxdbs(env->env_, kDbCount + 1);
    mdb_env_set_maxreaders(env->env_, options.max_readers);
    mdb_env_set_mapsize(env->env_, options.initial_map_size);
    // MDB_NOTLS: a read transaction belongs to its Reader, not to the thread, so a
    // shard can reset and renew it and several Readers can live on one thread.
    rc = mdb_env_open(env->env_, dir.c_str(), MDB_NOTLS, 0600);
    if (rc != 0) return open_error(dir, rc);
    if (Status s = env->open_databases(); !s.ok()) return s;
    out = std::move(env);
    return {};
}

Status Env::open_databases() {
    for (int attempt = 0; attempt < kMaxWriteAttempts; ++attempt) {
        MDB_txn* txn = nullptr;
        int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
        if (rc == MDB_MAP_RESIZED) {  // another process grew the map: adopt its size
            mdb_env_set_mapsize(env_, 0);
            continue;
        }
        if (rc != 0) return open_error(dir_, rc);
        for (std::size_t i = 0; i < kDbCount && rc == 0; ++i) {
            unsigned flags = MDB_CREATE | (static_cast<Db>(i) == Db::channel_routes ? MDB_DUPSORT : 0u);
            rc = mdb_dbi_open(txn, kDbNames[i].data(), flags, &dbis_[i]);
        }
        int put_rc = 0;
        Status schema = rc == 0 ? check_schema(txn, put_rc) : Status{};
        if (rc != 0 || put_rc != 0 || !schema.ok()) {
            mdb_txn_abort(txn);
        } else {
            rc = mdb_txn_commit(txn);
        }
        if (rc == MDB_MAP_FULL || put_rc == MDB_MAP_FULL) {
            mdb_env_set_mapsize(env_, map_size_locked() * 2);  // no Reader exists yet
            continue;
        }
        if (rc != 0) return open_error(dir_, rc);
        return schema;
    }
    return Status::error(Errc::io, cat("cannot open the databases in ", dir_, ": the map could not grow enough"));
}

Status Env::check_schema(MDB_txn* txn, int& put_rc) {
    MDB_val k = as_val(kSchemaKey);
    MDB_val v{};
    int rc = mdb_get(txn, dbi(Db::meta), &k, &v);
    if (rc == 0) {
        std::uint32_t version = 0;
        if (v.mv_size != sizeof version) {
            return Status::error(Errc::corrupt,
                                 cat("data dir ", dir_, " has a malformed schema version: restore a backup"));
        }
        std::memcpy(&version, v.mv_data, sizeof version);
        if (version != kSchemaVersion) {
            return Status::error(Errc::version,
                                 cat("data dir ", dir_, " has schema version ", std::to_string(version),
                                     " but this ringrelay reads version ", std::to_string(kSchemaVersion),
                                     ": run the ringrelay release that wrote it, or restore a backup"));
        }
        return {};
    }
    if (rc != MDB_NOTFOUND) return io_error(cat("cannot read the schema version in ", dir_), rc);
    for (Db db : {Db::keys, Db::key_ids, Db::channels, Db::blocks, Db::usage}) {
        MDB_stat st{};
        if (mdb_stat(txn, dbi(db), &st) == 0 && st.ms_entries != 0) {
            return Status::error(Errc::corrupt,
                                 cat("data dir ", dir_, " holds records but no schema version: restore a backup"));
        }
    }
    std::uint32_t version = kSchemaVersion;
    MDB_val nv{sizeof version, &version};
    put_rc = mdb_put(txn, dbi(Db::meta), &k, &nv, 0);
    if (put_rc != 0) return io_error(cat("cannot record the schema version in ", dir_), put_rc);
    return {};
}

std::uint64_t Env::map_size_locked() const noexcept {
    MDB_envinfo info{};
    mdb_env_info(env_, &info);  // reads a meta page: only while no remap can run
    return info.me_mapsize;
}

std::uint64_t Env::map_size() {
    std::lock_guard<std::mutex> lock(write_mu_);
    return map_size_locked();
}

Status Env::write(const std::function<Status(WriteTxn&)>& fn, std::int64_t now_ms) {
    std::lock_guard<std::mutex> lock(write_mu_);
    for (int attempt = 0; attempt < kMaxWriteAttempts; ++attempt) {
        bool map_full = false;
        bool resized = false;
        Status s = write_once(fn, now_ms, map_full, resized);
        if (!map_full && !resized) return s;
        // Another process grew the map (resized): adopt its size. Ours is full: double.
        if (Status r = remap_locked(resized ? 0 : map_size_locked() * 2); !r.ok()) return r;
    }
    return Status::error(Errc::io, cat("cannot write to ", dir_, ": the map could not grow enough"));
}

Status Env::write_once(const std::function<Status(WriteTxn&)>& fn, std::int64_t now_ms, bool& map_full, bool& resized) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
        resized = true;
        return {};
    }
    if (rc != 0) return open_error(dir_, rc);
    WriteTxn w(*this, txn, now_ms);
    Status s;
    try {
        s = fn(w);
    } catch (...) {
        mdb_txn_abort(txn);
        throw;
    }
    if (w.map_full_) {
        mdb_txn_abort(txn);
        map_full = true;
        return {};
    }
    if (!s.ok()) {
        mdb_txn_abort(txn);
        return s;
    }
    rc = mdb_txn_commit(txn);
    if (rc == MDB_MAP_FULL) {
        map_full = true;
        return {};
    }
    if (rc != 0) return io_error(cat("cannot commit to ", dir_), rc);
    return {};
}

Status Env::remap_locked(std::uint64_t new_size) {
    std::lock_guard<std::mutex> lock(readers_mu_);
    remapping_.store(true, std::memory_order_seq_cst);
    // Every Reader announces itself (active = true) before it looks at `remapping_`,
    // and we look at its flag after setting ours (both seq_cst): either it sees us and
    // backs off, or we see it and wait for its reset().
    for (ReaderSlot* slot : readers_) {
        while (slot->active.load(std::memory_order_seq_cst)) std::this_thread::yield();
    }
    int rc = mdb_env_set_mapsize(env_, new_size);
    remapping_.store(false, std::memory_order_seq_cst);
    if (rc != 0) return io_error(cat("cannot resize the map of ", dir_), rc);
    return {};
}

Status Env::adopt_grown_map() {
    std::lock_guard<std::mutex> lock(write_mu_);
    return remap_locked(0);
}

void Env::register_reader(ReaderSlot* slot) {
    std::lock_guard<std::mutex> lock(readers_mu_);
    readers_.push_back(slot);
}

void Env::unregister_reader(ReaderSlot* slot) {
    std::lock_guard<std::mutex> lock(readers_mu_);
    std::erase(readers_, slot);
}

Status Env::backup(const std::string& dest_dir) {
    struct stat st {};
    if (::stat(dest_dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return Status::error(Errc::io, cat(dest_dir, " is not a directory: name a new or empty directory"));
    } else if (::mkdir(dest_dir.c_str(), 0700) != 0) {
        return Status::error(Errc::io, cat("cannot create backup dir ", dest_dir, " (", std::strerror(errno),
                                           "): create its parent directory first"));
    }
    std::string data_file = cat(dest_dir, "/data.mdb");
    if (::access(data_file.c_str(), F_OK) == 0) {
        return Status::error(Errc::io, cat(dest_dir, " already holds a data.mdb: name a new or empty directory"));
    }
    // Holding the write lock keeps this process from remapping under the copy's read
    // transaction; other processes' writes go on (the copy reads one snapshot).
    std::lock_guard<std::mutex> lock(write_mu_);
    int rc = mdb_env_copy2(env_, dest_dir.c_str(), MDB_CP_COMPACT);
    if (rc == MDB_MAP_RESIZED) {
        if (Status r = remap_locked(0); !r.ok()) return r;
        rc = mdb_env_copy2(env_, dest_dir.c_str(), MDB_CP_COMPACT);
    }
    if (rc != 0) {
        ::unlink(data_file.c_str());
        return io_error(cat("cannot back up to ", dest_dir), rc);
    }
    // mdb_env_copy2 creates the file 0666 & ~umask; the copy holds credentials.
    ::chmod(data_file.c_str(), 0600);
    return {};
}

Status Env::stats(Stats& out) {
    out = Stats{};
    std::lock_guard<std::mutex> lock(write_mu_);
    MDB_envinfo info{};
    MDB_stat env_stat{};
    mdb_env_info(env_, &info);
    mdb_env_stat(env_, &env_stat);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
        if (Status r = remap_locked(0); !r.ok()) return r;
        mdb_env_info(env_, &info);
        rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    }
    if (rc != 0) return io_error(cat("cannot read ", dir_), rc);
    for (std::size_t i = 0; i < kDbCount; ++i) {
        MDB_stat st{};
        if (mdb_stat(txn, dbis_[i], &st) == 0) out.entries[i] = st.ms_entries;
    }
    MDB_val k = as_val(kSchemaKey);
    MDB_val v{};
    if (mdb_get(txn, dbi(Db::meta), &k, &v) == 0 && v.mv_size == sizeof out.schema_version) {
        std::memcpy(&out.schema_version, v.mv_data, sizeof out.schema_version);
    }
    mdb_txn_abort(txn);
    out.map_size = info.me_mapsize;
    out.page_size = env_stat.ms_psize;
    out.map_used = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * env_stat.ms_psize;
    out.readers_used = info.me_numreaders;
    out.max_readers = info.me_maxreaders;
    return {};
}

}  // namespace rr::store

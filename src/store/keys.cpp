// Key mutations: create, update, revoke, unrevoke, rotate.
#include "encode.hpp"
#include "ringrelay/store/ops.hpp"

namespace rr::store {
namespace {

constexpr std::string_view kKeyIdPrefix = "k_";
constexpr std::size_t kIdChars = 12;
constexpr int kIdAttempts = 8;
constexpr std::int64_t kMaxGraceMs = 365LL * 24 * 3600 * 1000;

Status unknown_key(std::string_view id) {
    return Status::error(Errc::not_found, cat("no key with id ", id, ": see ringrelay key list"));
}

// Loads the current record of key `id` as owned state.
Status load_key(WriteTxn& txn, std::string_view id, KeyState& out) {
    auto hash = txn.get(Db::key_ids, id);
    if (!hash) return unknown_key(id);
    auto value = txn.get(Db::keys, {reinterpret_cast<const char*>(hash->data()), hash->size()});
    KeyView view = value ? KeyView::from(value->data(), value->size()) : KeyView{};
    if (!view.valid() || view.id() != id) {
        return Status::error(Errc::corrupt, cat("key ", id, " has a damaged record: restore a backup"));
    }
    out = state_of(view);
    return {};
}

Status store_key(WriteTxn& txn, const KeyState& k) {
    return txn.put(Db::keys, as_key(k.hash), encode_key(k));
}

// Loads key `id`, lets `change` edit it, validates and stores it.
template <class Change>
Status modify_key(Env& env, std::string_view id, std::int64_t now_ms, Change change) {
    return env.write(
        [&](WriteTxn& txn) {
            KeyState k;
            if (Status s = load_key(txn, id, k); !s.ok()) return s;
            if (Status s = change(k); !s.ok()) return s;
            if (Status s = validate_key_spec(k.spec); !s.ok()) return s;
            k.updated_at_ms = txn.now_ms();
            return store_key(txn, k);
        },
        now_ms);
}

Status new_unique_id(WriteTxn& txn, std::string_view prefix, Db db, std::string& out) {
    for (int attempt = 0; attempt < kIdAttempts; ++attempt) {
        if (Status s = generate_id(prefix, kIdChars, out); !s.ok()) return s;
        if (!txn.get(db, out)) return {};
    }
    return Status::error(Errc::io, "cannot find a free id: the random number generator looks broken");
}

}  // namespace

Status create_key(WriteTxn& txn, const KeySpec& spec, std::string_view secret, std::string& id_out) {
    if (Status s = validate_key_spec(spec); !s.ok()) return s;
    if (!looks_like_secret(secret))
        return Status::error(Errc::invalid, "a key secret must be rr- and 40 base62 characters");
    KeyState k;
    k.spec = spec;
    k.hash = hash_secret(secret);
    if (txn.get(Db::keys, as_key(k.hash))) {
        return Status::error(Errc::invalid, "that secret is already in use: generate another");
    }
    if (Status s = new_unique_id(txn, kKeyIdPrefix, Db::key_ids, k.id); !s.ok()) return s;
    k.created_at_ms = k.updated_at_ms = txn.now_ms();
    if (Status s = store_key(txn, k); !s.ok()) return s;
    if (Status s = txn.put(Db::key_ids, k.id, as_key(k.hash)); !s.ok()) return s;
    id_out = k.id;
    return {};
}

Status create_key(Env& env, const KeySpec& spec, std::int64_t now_ms, NewKey& out) {
    if (Status s = validate_key_spec(spec); !s.ok()) return s;
    std::string secret;
    if (Status s = generate_secret(secret); !s.ok()) return s;
    std::string id;
    Status s = env.write([&](WriteTxn& txn) { return create_key(txn, spec, secret, id); }, now_ms);
    if (!s.ok()) return s;
    out.id = std::move(id);
    out.secret = std::move(secret);
    return {};
}

Status update_key(Env& env, std::string_view id, const KeyPatch& patch, std::int64_t now_ms) {
    return modify_key(env, id, now_ms, [&](KeyState& k) {
        patch.apply_to(k.spec);
        return Status{};
    });
}

Status revoke_key(Env& env, std::string_view id, std::string_view reason, std::int64_t now_ms) {
    if (Status s = validate_text("revoke reason", reason); !s.ok()) return s;
    return modify_key(env, id, now_ms, [&](KeyState& k) {
        if (!k.revoked) k.revoked_at_ms = now_ms;
        k.revoked = true;
        if (!reason.empty() || k.revoke_reason.empty()) k.revoke_reason = std::string(reason);
        return Status{};
    });
}

Status unrevoke_key(Env& env, std::string_view id, std::int64_t now_ms) {
    return modify_key(env, id, now_ms, [&](KeyState& k) {
        k.revoked = false;
        k.revoked_at_ms = 0;
        k.revoke_reason.clear();
        return Status{};
    });
}

Status rotate_key(Env& env, std::string_view id, std::int64_t grace_ms, std::int64_t now_ms, std::string& new_secret) {
    if (grace_ms < 0 || grace_ms > kMaxGraceMs) {
        return Status::error(Errc::invalid, "grace must be between 0s and 365d");
    }
    std::string secret;
    if (Status s = generate_secret(secret); !s.ok()) return s;
    Status s = env.write(
        [&](WriteTxn& txn) {
            KeyState k;
            if (Status ls = load_key(txn, id, k); !ls.ok()) return ls;
            const Sha256 old_hash = k.hash;
            const std::int64_t grace_until = txn.now_ms() + grace_ms;
            k.has_previous = true;
            k.previous_hash = old_hash;
            k.previous_grace_until_ms = grace_until;
            k.hash = hash_secret(secret);
            k.updated_at_ms = txn.now_ms();
            // The old hash now names the key through an alias that carries the grace.
            if (Status ps = txn.put(Db::keys, as_key(old_hash), encode_key_alias(k.id, txn.now_ms(), grace_until));
                !ps.ok()) {
                return ps;
            }
            if (Status ps = store_key(txn, k); !ps.ok()) return ps;
            return txn.put(Db::key_ids, k.id, as_key(k.hash));
        },
        now_ms);
    if (!s.ok()) return s;
    new_secret = std::move(secret);
    return {};
}

}  // namespace rr::store

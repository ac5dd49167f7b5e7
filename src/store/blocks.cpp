// Block list and usage counter mutations.
#include "encode.hpp"
#include "ringrelay/store/ops.hpp"

namespace rr::store {
namespace {

std::string_view as_key(const std::uint8_t* bytes, std::size_t size) noexcept {
    return {reinterpret_cast<const char*>(bytes), size};
}

}  // namespace

Status add_block(Env& env, const IpPrefix& prefix, std::string_view reason, std::int64_t expires_at_ms,
                 std::int64_t now_ms) {
    if (prefix.network.family != 4 && prefix.network.family != 6) {
        return Status::error(Errc::invalid, "a block needs an IPv4 or IPv6 address or prefix");
    }
    if (prefix.length > prefix.network.size() * 8 || mask_ip(prefix.network, prefix.length) != prefix.network) {
        return Status::error(Errc::invalid, cat("block prefix ", format_ip_prefix(prefix), " has host bits set"));
    }
    if (Status s = validate_text("block reason", reason); !s.ok()) return s;
    if (expires_at_ms < 0) return Status::error(Errc::invalid, "block expiry must not be before 1970");
    std::uint8_t key[kMaxBlockKey];
    std::size_t key_size = block_key(prefix, key);
    return env.write(
        [&](WriteTxn& txn) {
            return txn.put(Db::blocks, as_key(key, key_size), encode_block(reason, txn.now_ms(), expires_at_ms));
        },
        now_ms);
}

Status remove_block(Env& env, const IpPrefix& prefix, std::int64_t now_ms) {
    std::uint8_t key[kMaxBlockKey];
    std::size_t key_size = block_key(prefix, key);
    return env.write(
        [&](WriteTxn& txn) {
            if (!txn.get(Db::blocks, as_key(key, key_size))) {
                return Status::error(Errc::not_found,
                                     cat("no block for ", format_ip_prefix(prefix), ": see ringrelay block list"));
            }
            return txn.del(Db::blocks, as_key(key, key_size));
        },
        now_ms);
}

Status add_usage(Env& env, std::span<const UsageDelta> deltas, std::int64_t now_ms, std::size_t* applied) {
    std::size_t count = 0;
    Status s = env.write(
        [&](WriteTxn& txn) {
            count = 0;
            for (const UsageDelta& d : deltas) {
                if (!txn.get(Db::key_ids, d.key_id)) continue;
                std::uint64_t requests = d.requests;
                std::uint64_t tokens = d.tokens;
                if (auto old = txn.get(Db::usage, d.key_id)) {
                    UsageView v = UsageView::from(old->data(), old->size());
                    requests += v.requests();
                    tokens += v.tokens();
                }
                if (Status ps = txn.put(Db::usage, d.key_id, encode_usage(requests, tokens, txn.now_ms())); !ps.ok())
                    return ps;
                ++count;
            }
            return Status{};
        },
        now_ms);
    if (applied != nullptr) *applied = s.ok() ? count : 0;
    return s;
}

}  // namespace rr::store

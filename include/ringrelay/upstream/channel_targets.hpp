// Where each channel's base URL points, for one shard: the upstream pool's target for
// it, with its host name looked up OFF the shard.
//
// Why. A shard must never block: a DNS lookup can take the resolver's whole timeout
// (seconds) when DNS is unwell, and every connection of the shard would wait with it.
// So names are resolved on the resolver thread (a io::BlockingWorker shared by all shards)
// while the request that needs the answer waits as a coroutine; the shard serves
// everything else meanwhile. Numeric addresses need no lookup and never leave the shard.
//
// Freshness. A name's addresses change (cloud endpoints rotate them), and an address
// kept forever is the "works again after a restart" incident. After refresh_ms the next
// request for the channel looks the name up again; requests meanwhile keep using the
// address known so far, and if the new lookup fails the known address stays (logged).
// A changed channel (new updated_at) is looked up at once.
//
// Forgetting. An entry holds a reference to its pool target, so the pool keeps the
// target while the channel may use it. A channel not asked for during kForgetAfterMs
// (forget_after_ms; deleted, renamed, or just quiet) has its entry dropped (swept at most once per
// refresh_ms, when a new entry is made): its target is then pruned by the pool once
// its idle connections are gone. An entry that a lookup is waiting on is never dropped.
//
// Ownership and threads: one ChannelTargets per shard, used on that shard's thread
// only; it borrows the loop, the pool and the resolver worker (all outlive it) and
// owns its entries' TargetRefs. Only the Resolve function runs on the resolver thread.
// Errors: a URL that does not parse or a name that does not resolve is false with
// the reason in `error`; nothing throws on the request path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ringrelay/io/blocking_worker.hpp"
#include "ringrelay/io/loop.hpp"
#include "ringrelay/io/task.hpp"
#include "ringrelay/upstream/pool.hpp"
#include "ringrelay/upstream/target.hpp"

namespace rr::upstream {

class ChannelTargets {
public:
    // Parses a base URL and resolves its host (blocking: runs on the resolver thread).
    using Resolve = std::function<bool(std::string_view url, upstream::UpstreamTarget& out, std::string& error)>;
    static constexpr std::uint64_t kDefaultRefreshMs = 60'000;
    static constexpr std::uint64_t kForgetAfterMs = 600'000;

    ChannelTargets(io::Loop& loop, upstream::UpstreamPool& pool, io::BlockingWorker& resolver,
                   Resolve resolve = default_resolve(), std::uint64_t refresh_ms = kDefaultRefreshMs,
                   std::uint64_t forget_after_ms = kForgetAfterMs);

    // The request path's fast way: the target when the channel's address is known and
    // fresh (no coroutine, no lookup); false sends the caller to target_for().
    bool known_target(std::string_view id, std::int64_t updated_at_ms, upstream::TargetRef& target) noexcept;

    // The pool target for the channel `id` at version `updated_at_ms` with `base_url`.
    // False with `error` when the URL is invalid or its host does not resolve (first
    // lookup of this version only: later failures keep the known address).
    io::Task<bool> target_for(std::string_view id, std::int64_t updated_at_ms, std::string_view base_url,
                              upstream::TargetRef& target, std::string& error);

    std::uint64_t lookups() const noexcept { return lookups_; }  // sent to the resolver thread
    std::size_t entries() const noexcept { return entries_.size(); }

private:
    struct Entry {
        std::int64_t version = 0;  // the channel's updated_at_ms the target belongs to
        upstream::TargetRef target;
        bool known = false;        // target holds an address for version
        bool numeric = false;      // no DNS involved: never looked up again
        bool refreshing = false;   // a request is looking the name up again
        std::uint64_t looked_up_at_ms = 0;
        std::uint64_t used_at_ms = 0;  // last asked for (forgetting)
        std::uint32_t waiters = 0;     // coroutines holding this Entry& across a lookup
    };
    // Holds an Entry& safe from forget_unused() while a lookup waits.
    struct EntryPin {
        explicit EntryPin(Entry& e) noexcept : e(e) { ++e.waiters; }
        ~EntryPin() { --e.waiters; }
        EntryPin(const EntryPin&) = delete;
        EntryPin& operator=(const EntryPin&) = delete;
        Entry& e;
    };
    void forget_unused();
    static Resolve default_resolve();
    io::Task<bool> look_up(std::string_view url, upstream::UpstreamTarget& out, std::string& error);
    io::Task<void> refresh(Entry& e, std::string_view id, std::string_view base_url);

    io::Loop& loop_;
    upstream::UpstreamPool& pool_;
    io::BlockingWorker& resolver_;
    Resolve resolve_;
    std::uint64_t refresh_ms_;
    std::uint64_t forget_after_ms_;
    struct IdHash {
        using is_transparent = void;  // find() by string_view, no std::string per request
        std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };
    bool fresh(const Entry& e) const noexcept;

    // By channel id. A rehash keeps references valid; an entry is erased only by
    // forget_unused() and only when no lookup waits on it.
    std::unordered_map<std::string, Entry, IdHash, std::equal_to<>> entries_;
    std::uint64_t last_sweep_ms_ = 0;
    std::uint64_t lookups_ = 0;
};

}  // namespace rr::upstream

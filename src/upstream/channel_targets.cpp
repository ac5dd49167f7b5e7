#include "ringrelay/upstream/channel_targets.hpp"

#include "ringrelay/obs/log.hpp"

namespace rr::upstream {

ChannelTargets::ChannelTargets(io::Loop& loop, upstream::UpstreamPool& pool, io::BlockingWorker& resolver,
                               Resolve resolve, std::uint64_t refresh_ms, std::uint64_t forget_after_ms)
    : loop_(loop),
      pool_(pool),
      resolver_(resolver),
      resolve_(std::move(resolve)),
      refresh_ms_(refresh_ms),
      forget_after_ms_(forget_after_ms) {}

ChannelTargets::Resolve ChannelTargets::default_resolve() {
    return [](std::string_view url, upstream::UpstreamTarget& out, std::string& error) {
        return upstream::parse_target(url, out, error);
    };
}

bool ChannelTargets::fresh(const Entry& e) const noexcept {
    return e.numeric || loop_.now_ms() - e.looked_up_at_ms < refresh_ms_;
}

bool ChannelTargets::known_target(std::string_view id, std::int64_t updated_at_ms, upstream::TargetRef& target) noexcept {
    const auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    Entry& e = it->second;
    if (!e.known || e.version != updated_at_ms || (!fresh(e) && !e.refreshing)) return false;
    e.used_at_ms = loop_.now_ms();
    target = e.target;
    return true;
}

void ChannelTargets::forget_unused() {
    const std::uint64_t now = loop_.now_ms();
    if (now - last_sweep_ms_ < refresh_ms_) return;
    last_sweep_ms_ = now;
    std::erase_if(entries_, [now, this](const auto& kv) {
        const Entry& e = kv.second;
        return e.waiters == 0 && !e.refreshing && now - e.used_at_ms >= forget_after_ms_;
    });
}

// Runs the lookup on the resolver thread; the caller's coroutine waits, the shard does not.
io::Task<bool> ChannelTargets::look_up(std::string_view url, upstream::UpstreamTarget& out, std::string& error) {
    ++lookups_;
    const std::string owned(url);  // the resolver thread reads it while this frame waits
    bool ok = false;
    co_await resolver_.run(loop_, [&] { ok = resolve_(owned, out, error); });
    co_return ok;
}

io::Task<bool> ChannelTargets::target_for(std::string_view id, std::int64_t updated_at_ms, std::string_view base_url,
                                          upstream::TargetRef& target, std::string& error) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
        forget_unused();  // new entries are what grows the map: sweep before adding one
        it = entries_.emplace(std::string(id), Entry{}).first;
    }
    Entry& e = it->second;
    const EntryPin pin(e);  // e stays in the map across the lookups below
    e.used_at_ms = loop_.now_ms();
    if (e.known && e.version == updated_at_ms) {
        if (!fresh(e) && !e.refreshing) co_await refresh(e, id, base_url);
        target = e.target;
        co_return true;
    }
    upstream::UpstreamTarget t;
    bool numeric = upstream::parse_target(base_url, t, error, /*resolve=*/false);
    if (!numeric) {
        error.clear();
        const bool found = co_await look_up(base_url, t, error);
        if (!found) co_return false;
    }
    target = pool_.add_target(t);
    // Another request may have stored a newer version while this one waited.
    if (!e.known || e.version <= updated_at_ms) {
        e.version = updated_at_ms;
        e.target = target;
        e.known = true;
        e.numeric = numeric;
        e.refreshing = false;
        e.looked_up_at_ms = loop_.now_ms();
    }
    co_return true;
}

// Looks the name up again for the request that found the address stale; the others
// keep using the known address until this one is done.
io::Task<void> ChannelTargets::refresh(Entry& e, std::string_view id, std::string_view base_url) {
    e.refreshing = true;
    const std::int64_t version = e.version;
    const std::string channel(id);
    upstream::UpstreamTarget t;
    std::string error;
    const bool ok = co_await look_up(base_url, t, error);
    e.refreshing = false;
    if (e.version != version) co_return;  // the channel changed meanwhile: its new entry stands
    e.looked_up_at_ms = loop_.now_ms();
    if (ok) {
        e.target = pool_.add_target(t);
    } else {
        obs::log(obs::Level::warn, "channel address refresh failed; keeping the known address",
                 {{"channel", channel}, {"error", error}});
    }
}

}  // namespace rr::upstream

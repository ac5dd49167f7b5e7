// The striped table shape KeySlots and RateLimits share: a fixed array of stripes chosen
// by a hash of a 64-bit key (each stripe a mutex and what the table keeps per stripe),
// and in each stripe a small open-addressing map of entries, one per active key.
//
// KeyStripes<Stripe> owns the stripes and picks one for a key; ProbingMap<Entry> is the
// per-stripe map. Neither locks: the caller holds the stripe's mutex around every map
// call. Both are templates so that the per-request lookups inline (no virtual calls, no
// std::function); a map call allocates only when the map grows or shrinks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rr::gateway {

// splitmix64's finaliser: key ids are small sequential integers, so spread them. The
// stripe takes high bits and the per-stripe map low bits, so keys that share a stripe
// still spread over its map.
struct SpreadKey {
    std::uint64_t operator()(std::uint64_t x) const noexcept {
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
    }
};

inline constexpr std::size_t kMaxKeyStripes = std::size_t{1} << 16;

// A fixed array of `Stripe`s (default-constructed, never moved), one chosen per key. The
// array is built once; which stripe a key maps to never changes.
template <class Stripe>
class KeyStripes {
public:
    // count: a power of two in [1, kMaxKeyStripes]; else std::invalid_argument, whose
    // message starts with `table` ("key slot", "rate limit").
    KeyStripes(std::size_t count, std::string_view table) {
        if (count == 0 || count > kMaxKeyStripes || (count & (count - 1)) != 0) {
            throw std::invalid_argument(std::string(table) +
                                        " stripes must be a power of two up to 65536");
        }
        mask_ = count - 1;
        stripes_ = std::make_unique<Stripe[]>(count);
    }

    std::size_t size() const noexcept { return mask_ + 1; }
    std::size_t index_of(std::uint64_t key) const noexcept {
        return static_cast<std::size_t>(SpreadKey{}(key) >> 40) & mask_;
    }
    // Stripes are shared mutable state guarded by their own mutex, so a const table
    // still hands out a mutable stripe (the const stats calls lock it).
    Stripe& for_key(std::uint64_t key) const noexcept { return stripes_[index_of(key)]; }
    Stripe* begin() const noexcept { return stripes_.get(); }
    Stripe* end() const noexcept { return stripes_.get() + size(); }

private:
    std::size_t mask_ = 0;
    std::unique_ptr<Stripe[]> stripes_;
};

// Linear probing at load <= 1/2 with backward-shift deletion (no tombstones), so a map
// that saw a burst of keys shrinks back (below load 1/8 it halves, down to kMinSlots)
// when they go away.
//
// Entry: default-constructible, and a default-constructed Entry is an empty slot; has a
// member `std::uint64_t key` and `bool in_use() const noexcept`, false exactly for an
// empty slot; move-assignable. Hash: a stateless functor uint64 -> uint64 (its low bits
// pick the home slot).
//
// A pointer or reference to an entry lives until the next insert or erase (they move
// entries).
template <class Entry, class Hash = SpreadKey>
class ProbingMap {
public:
    static constexpr std::size_t kMinSlots = 8;

    Entry* find(std::uint64_t key) noexcept {
        if (slots_.empty()) return nullptr;
        for (std::size_t i = home(key);; i = next(i)) {
            Entry& e = slots_[i];
            if (!e.in_use()) return nullptr;
            if (e.key == key) return &e;
        }
    }
    const Entry* find(std::uint64_t key) const noexcept {
        return const_cast<ProbingMap*>(this)->find(key);
    }

    // Adds an entry for `key`, which must be absent: an empty (default) slot gets the key,
    // then `fill(entry)` sets the rest and must leave it in_use(). Filling the slot in
    // place, rather than moving a whole Entry in, keeps the callers' lookup-or-insert
    // small enough to inline. Grows the map (allocates) as needed.
    template <class Fill>
    Entry& insert(std::uint64_t key, Fill&& fill) {
        if ((size_ + 1) * 2 > slots_.size()) rehash(std::max(kMinSlots, slots_.size() * 2));
        Entry& slot = slots_[free_slot_for(key)];
        slot.key = key;
        fill(slot);
        ++size_;
        return slot;
    }

    // `victim` must be an entry of this map.
    void erase(Entry& victim) {
        erase_at(static_cast<std::size_t>(&victim - slots_.data()));
        shrink_to_load();
    }

    // Drops the entries `drop(entry)` selects; returns how many. One pass: backward shift
    // only moves entries from slots not yet visited into the hole being visited (or from
    // the wrapped start, already visited, which is harmless), so each entry is judged.
    template <class Pred>
    std::size_t erase_if(Pred&& drop) {
        std::size_t dropped = 0;
        for (std::size_t i = 0; i < slots_.size();) {
            if (slots_[i].in_use() && drop(std::as_const(slots_[i]))) {
                erase_at(i);
                ++dropped;
            } else {
                ++i;
            }
        }
        shrink_to_load();
        return dropped;
    }

    // f(Entry&) for every entry, in slot order. f must not insert or erase.
    template <class F>
    void for_each(F&& f) {
        for (Entry& e : slots_) {
            if (e.in_use()) f(e);
        }
    }

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return slots_.size(); }

private:
    std::size_t mask() const noexcept { return slots_.size() - 1; }
    std::size_t next(std::size_t i) const noexcept { return (i + 1) & mask(); }
    std::size_t home(std::uint64_t key) const noexcept {
        return static_cast<std::size_t>(Hash{}(key)) & mask();
    }
    std::size_t free_slot_for(std::uint64_t key) const noexcept {
        std::size_t i = home(key);
        while (slots_[i].in_use()) i = next(i);
        return i;
    }

    void erase_at(std::size_t hole) noexcept {
        for (std::size_t j = next(hole); slots_[j].in_use(); j = next(j)) {
            // Entry j may fill the hole unless its home lies cyclically in (hole, j].
            const std::size_t h = home(slots_[j].key);
            const bool stays = hole < j ? (hole < h && h <= j) : (hole < h || h <= j);
            if (stays) continue;
            slots_[hole] = std::move(slots_[j]);
            hole = j;
        }
        slots_[hole] = Entry{};
        --size_;
    }

    void shrink_to_load() {
        while (slots_.size() > kMinSlots && size_ * 8 < slots_.size()) rehash(slots_.size() / 2);
    }

    void rehash(std::size_t capacity) {
        std::vector<Entry> old(capacity);
        old.swap(slots_);
        for (Entry& e : old) {
            if (e.in_use()) slots_[free_slot_for(e.key)] = std::move(e);
        }
    }

    std::vector<Entry> slots_;
    std::size_t size_ = 0;
};

}  // namespace rr::gateway

// The records the store keeps, and the views that read them in place.
//
// Layout. Every value in the LMDB environment is one record: a fixed-layout, packed,
// little-endian struct (RecordHeader first) followed by the bytes of its strings. A
// string is a StrRef {offset, length} relative to the start of the record. A view
// checks the header and that every StrRef lies inside the record once, when it is
// made (a handful of comparisons); after that each accessor is one load from the map.
// Nothing is parsed or copied per request.
//
// Alignment. LMDB places values on 2-byte boundaries only, so the structs are
// [[gnu::packed]] (alignment 1): the compiler emits unaligned-safe loads, which on
// x86-64 and AArch64 are plain loads.
//
// Versions. header.version is the layout version of that record kind (1 today);
// header.fixed_size lets a later version append fixed fields that a version-1 reader
// skips. A view of a record with an unknown kind or version is invalid (!valid()).
// The data file is in host byte order and not portable across endianness, like LMDB's
// own file.
//
// LIFETIME. A view points into the LMDB map. It is valid only until the read
// transaction it came from ends (Reader::reset(), Reader::renew(), or the Reader's
// destruction) or, inside a write transaction, until the next write to the same
// database. Copy what you need to keep (to_spec(), std::string(view.name())).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "ringrelay/common.hpp"

namespace rr::store {

// SHA-256 of a key secret: the key of the `keys` database.
using Sha256 = std::array<std::uint8_t, 32>;

enum class RecordKind : std::uint8_t {
    key = 'K',        // keys: current hash -> key
    key_alias = 'A',  // keys: a rotated-out hash -> the key id, with its grace deadline
    channel = 'C',
    block = 'B',
    usage = 'U',
    response_route = 'R',  // responses: an OpenAI response id -> the channel and key that made it
};

inline constexpr std::uint8_t kRecordVersion = 1;

struct [[gnu::packed]] StrRef {
    std::uint32_t offset;
    std::uint32_t length;
};

struct [[gnu::packed]] RecordHeader {
    std::uint8_t kind;         // RecordKind
    std::uint8_t version;      // kRecordVersion
    std::uint16_t fixed_size;  // bytes of the fixed part (the struct) in this record
    std::uint32_t total_size;  // fixed part + string bytes; equals the LMDB value size
};

struct [[gnu::packed]] KeyRecordV1 {
    RecordHeader header;
    std::uint8_t hash[32];           // SHA-256 of the current secret
    std::uint8_t previous_hash[32];  // of the secret replaced by the last rotation
    std::int64_t created_at_ms;
    std::int64_t updated_at_ms;
    std::int64_t expires_at_ms;            // 0 = never
    std::int64_t revoked_at_ms;            // 0 when not revoked
    std::int64_t previous_grace_until_ms;  // 0 = never rotated
    std::uint32_t max_concurrency;
    std::uint32_t max_wait;
    std::uint32_t rpm;
    std::uint64_t tpm;
    std::uint64_t quota;  // tokens; 0 = unlimited
    std::uint8_t revoked;
    std::uint8_t has_previous;
    std::uint8_t reserved[2];
    StrRef id, name, group, models, revoke_reason;
};

struct [[gnu::packed]] KeyAliasRecordV1 {
    RecordHeader header;
    std::int64_t rotated_at_ms;
    std::int64_t grace_until_ms;  // the old secret works until then, then reads as expired
    StrRef id;
};

struct [[gnu::packed]] ChannelRecordV1 {
    RecordHeader header;
    std::int64_t created_at_ms;
    std::int64_t updated_at_ms;
    std::int32_t priority;          // lower is tried first
    std::uint32_t weight;           // >= 1, among channels of one priority
    std::uint32_t max_concurrency;  // 0 = unlimited
    std::uint32_t timeout_ms;       // 0 = unset: the server's --upstream-timeout
    std::uint16_t port;
    std::uint8_t type;  // ChannelType
    std::uint8_t enabled;
    std::uint8_t tls;  // https
    std::uint8_t pass_headers;  // PassHeader bits: billing headers a client may set (0 in older records: none)
    std::uint8_t inject_usage;  // 1: OpenAI streams get stream_options.include_usage (0 in older records: off)
    std::uint8_t reserved[1];
    // host and path_prefix point inside the base_url bytes.
    StrRef id, name, base_url, host, path_prefix, api_key, groups, models, model_map;
    // Appended fields: a record written before they existed has a shorter fixed part
    // (header.fixed_size), and its view reads them as their defaults.
    // Active health check: GET base path + health_path; empty = off.
    StrRef health_path;
    std::uint32_t health_interval_ms;
    std::uint32_t health_timeout_ms;
    // 0 = unset: the server's --first-byte-timeout; kFirstByteTimeoutOff = off.
    std::uint32_t first_byte_timeout_ms;
};

struct [[gnu::packed]] BlockRecordV1 {
    RecordHeader header;
    std::int64_t created_at_ms;
    std::int64_t expires_at_ms;  // 0 = never
    StrRef reason;
};

struct [[gnu::packed]] UsageRecordV1 {
    RecordHeader header;
    std::uint64_t requests;
    std::uint64_t tokens;
    std::int64_t updated_at_ms;
};

// Which channel created a /v1/responses response, for which key, until when: the
// gateway routes GET/DELETE /v1/responses/{id}... there (response affinity).
struct [[gnu::packed]] ResponseRouteRecordV1 {
    RecordHeader header;
    std::int64_t expires_at_ms;
    StrRef channel_id;
    StrRef key_id;
};

enum class ChannelType : std::uint8_t { openai = 1, anthropic = 2 };

// Client headers that pick what a channel's account is billed for. The gateway drops
// them from every request unless the channel lets them pass (bits of pass_headers).
enum PassHeader : std::uint8_t {
    kPassOpenAIOrganization = 1,  // OpenAI-Organization
    kPassOpenAIProject = 2,       // OpenAI-Project
};
inline constexpr std::uint8_t kPassHeadersAll = kPassOpenAIOrganization | kPassOpenAIProject;

std::string_view to_string(ChannelType t) noexcept;
std::optional<ChannelType> parse_channel_type(std::string_view text) noexcept;

// A comma-separated list stored in a record ("gpt-4o,gpt-4o-mini"), iterated without
// allocation. Elements are never empty (writers validate).
class ListView {
public:
    class iterator {
    public:
        using value_type = std::string_view;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        iterator(std::string_view rest) noexcept : rest_(rest) { advance(); }
        std::string_view operator*() const noexcept { return current_; }
        iterator& operator++() noexcept {
            advance();
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator old = *this;
            advance();
            return old;
        }
        bool operator==(const iterator& o) const noexcept {
            return done_ == o.done_ && (done_ || current_.data() == o.current_.data());
        }

    private:
        void advance() noexcept;
        std::string_view rest_;
        std::string_view current_;
        bool done_ = true;
        bool end_reached_ = false;
    };

    ListView() = default;
    explicit ListView(std::string_view text) noexcept : text_(text) {}
    iterator begin() const noexcept { return text_.empty() ? iterator() : iterator(text_); }
    iterator end() const noexcept { return iterator(); }
    bool empty() const noexcept { return text_.empty(); }
    std::size_t size() const noexcept;
    bool contains(std::string_view item) const noexcept;
    std::string_view text() const noexcept { return text_; }

private:
    std::string_view text_;
};

// A model map "a=b,c=d": requested name -> upstream name.
class ModelMapView {
public:
    ModelMapView() = default;
    explicit ModelMapView(std::string_view text) noexcept : list_(text) {}
    // The upstream name for `requested`, or nullopt when the map has no entry for it.
    std::optional<std::string_view> find(std::string_view requested) const noexcept;
    // `requested` mapped, or unchanged when unmapped.
    std::string_view map(std::string_view requested) const noexcept;
    ListView entries() const noexcept { return list_; }  // "a=b" elements
    bool empty() const noexcept { return list_.empty(); }
    std::string_view text() const noexcept { return list_.text(); }

private:
    ListView list_;
};

// Views: default-constructed or made from bad bytes, valid() is false and every other
// accessor must not be called.

class KeyView {
public:
    KeyView() = default;
    static KeyView from(const void* data, std::size_t size) noexcept;
    bool valid() const noexcept { return rec_ != nullptr; }

    std::string_view id() const noexcept { return str(rec_->id); }
    std::string_view name() const noexcept { return str(rec_->name); }
    std::string_view group() const noexcept { return str(rec_->group); }
    ListView models() const noexcept { return ListView(str(rec_->models)); }  // empty = every model
    bool allows_model(std::string_view model) const noexcept { return models().empty() || models().contains(model); }
    std::uint32_t max_concurrency() const noexcept { return rec_->max_concurrency; }
    std::uint32_t max_wait() const noexcept { return rec_->max_wait; }
    std::uint32_t rpm() const noexcept { return rec_->rpm; }
    std::uint64_t tpm() const noexcept { return rec_->tpm; }
    std::uint64_t quota() const noexcept { return rec_->quota; }
    std::int64_t created_at_ms() const noexcept { return rec_->created_at_ms; }
    std::int64_t updated_at_ms() const noexcept { return rec_->updated_at_ms; }
    std::int64_t expires_at_ms() const noexcept { return rec_->expires_at_ms; }
    bool revoked() const noexcept { return rec_->revoked != 0; }
    std::int64_t revoked_at_ms() const noexcept { return rec_->revoked_at_ms; }
    std::string_view revoke_reason() const noexcept { return str(rec_->revoke_reason); }
    Sha256 hash() const noexcept;
    bool has_previous() const noexcept { return rec_->has_previous != 0; }
    Sha256 previous_hash() const noexcept;
    std::int64_t previous_grace_until_ms() const noexcept { return rec_->previous_grace_until_ms; }
    bool expired_at(std::int64_t now_ms) const noexcept {
        return rec_->expires_at_ms != 0 && now_ms >= rec_->expires_at_ms;
    }

    const KeyRecordV1* record() const noexcept { return rec_; }

private:
    std::string_view str(StrRef r) const noexcept;
    const KeyRecordV1* rec_ = nullptr;
};

class KeyAliasView {
public:
    KeyAliasView() = default;
    static KeyAliasView from(const void* data, std::size_t size) noexcept;
    bool valid() const noexcept { return rec_ != nullptr; }
    std::string_view id() const noexcept;
    std::int64_t rotated_at_ms() const noexcept { return rec_->rotated_at_ms; }
    std::int64_t grace_until_ms() const noexcept { return rec_->grace_until_ms; }

private:
    const KeyAliasRecordV1* rec_ = nullptr;
};

class ChannelView {
public:
    ChannelView() = default;
    static ChannelView from(const void* data, std::size_t size) noexcept;
    bool valid() const noexcept { return rec_ != nullptr; }

    std::string_view id() const noexcept { return str(rec_->id); }
    std::string_view name() const noexcept { return str(rec_->name); }
    ChannelType type() const noexcept { return static_cast<ChannelType>(rec_->type); }
    std::string_view base_url() const noexcept { return str(rec_->base_url); }  // normalised, no trailing '/'
    bool tls() const noexcept { return rec_->tls != 0; }
    std::string_view host() const noexcept { return str(rec_->host); }  // IPv6 without brackets
    std::uint16_t port() const noexcept { return rec_->port; }          // explicit or the scheme's default
    std::string_view path_prefix() const noexcept { return str(rec_->path_prefix); }  // "" or "/x/y"
    // The upstream credential. Never print it unless the operator asked (--reveal).
    std::string_view api_key() const noexcept { return str(rec_->api_key); }
    ListView groups() const noexcept { return ListView(str(rec_->groups)); }
    ListView models() const noexcept { return ListView(str(rec_->models)); }
    ModelMapView model_map() const noexcept { return ModelMapView(str(rec_->model_map)); }
    std::int32_t priority() const noexcept { return rec_->priority; }
    std::uint32_t weight() const noexcept { return rec_->weight; }
    bool enabled() const noexcept { return rec_->enabled != 0; }
    bool inject_usage() const noexcept { return rec_->inject_usage != 0; }
    std::uint32_t max_concurrency() const noexcept { return rec_->max_concurrency; }
    std::uint32_t timeout_ms() const noexcept { return rec_->timeout_ms; }  // 0 = unset (inherited)
    std::uint8_t pass_headers() const noexcept { return rec_->pass_headers & kPassHeadersAll; }  // PassHeader bits
    std::int64_t created_at_ms() const noexcept { return rec_->created_at_ms; }
    std::int64_t updated_at_ms() const noexcept { return rec_->updated_at_ms; }
    // The active health check: the path under the base URL ("" = checks off), how
    // often and how long one may take. Records older than these fields read "" / 0.
    std::string_view health_path() const noexcept { return has_health_fields() ? str(rec_->health_path) : ""; }
    std::uint32_t health_interval_ms() const noexcept { return has_health_fields() ? rec_->health_interval_ms : 0; }
    std::uint32_t health_timeout_ms() const noexcept { return has_health_fields() ? rec_->health_timeout_ms : 0; }
    // Connect + response head within this, else the next channel: 0 = unset (the
    // server's --first-byte-timeout; also what records older than the field read),
    // kFirstByteTimeoutOff (ops.hpp) = off for this channel.
    std::uint32_t first_byte_timeout_ms() const noexcept {
        return rec_->header.fixed_size >= offsetof(ChannelRecordV1, first_byte_timeout_ms) + sizeof(std::uint32_t)
                   ? rec_->first_byte_timeout_ms
                   : 0;
    }

    const ChannelRecordV1* record() const noexcept { return rec_; }

    // The fixed part up to the last field every channel record has (older records
    // end there); fields after it are read only when the record holds them.
    static constexpr std::size_t kBaseFixedSize = offsetof(ChannelRecordV1, health_path);

private:
    bool has_health_fields() const noexcept {
        return rec_->header.fixed_size >= offsetof(ChannelRecordV1, health_timeout_ms) + sizeof(std::uint32_t);
    }
    std::string_view str(StrRef r) const noexcept;
    const ChannelRecordV1* rec_ = nullptr;
};

class BlockView {
public:
    BlockView() = default;
    // `key` is the `blocks` database key (see block_key()), `data` the record.
    static BlockView from(const void* key, std::size_t key_size, const void* data, std::size_t size) noexcept;
    bool valid() const noexcept { return rec_ != nullptr; }

    const IpPrefix& prefix() const noexcept { return prefix_; }
    std::string_view reason() const noexcept;
    std::int64_t created_at_ms() const noexcept { return rec_->created_at_ms; }
    std::int64_t expires_at_ms() const noexcept { return rec_->expires_at_ms; }
    bool expired_at(std::int64_t now_ms) const noexcept {
        return rec_->expires_at_ms != 0 && now_ms >= rec_->expires_at_ms;
    }

private:
    const BlockRecordV1* rec_ = nullptr;
    IpPrefix prefix_;
};

class UsageView {
public:
    UsageView() = default;
    static UsageView from(const void* data, std::size_t size) noexcept;
    bool valid() const noexcept { return rec_ != nullptr; }
    std::uint64_t requests() const noexcept { return rec_ ? rec_->requests : 0; }
    std::uint64_t tokens() const noexcept { return rec_ ? rec_->tokens : 0; }
    std::int64_t updated_at_ms() const noexcept { return rec_ ? rec_->updated_at_ms : 0; }

private:
    const UsageRecordV1* rec_ = nullptr;
};

class ResponseRouteView {
public:
    ResponseRouteView() = default;
    static ResponseRouteView from(const void* data, std::size_t size) noexcept;
    bool valid() const noexcept { return rec_ != nullptr; }
    std::string_view channel_id() const noexcept;
    std::string_view key_id() const noexcept;
    std::int64_t expires_at_ms() const noexcept { return rec_->expires_at_ms; }
    bool expired_at(std::int64_t now_ms) const noexcept { return now_ms >= rec_->expires_at_ms; }

private:
    const ResponseRouteRecordV1* rec_ = nullptr;
};

// The `blocks` database key of a prefix: family (4|6), prefix length, then the network
// bytes (4 or 16). Ordered by family, then length, then address, so a lookup can jump
// from one prefix length in use to the next. Returns the key length (6 or 18).
inline constexpr std::size_t kMaxBlockKey = 18;
std::size_t block_key(const IpPrefix& p, std::uint8_t (&out)[kMaxBlockKey]) noexcept;

}  // namespace rr::store

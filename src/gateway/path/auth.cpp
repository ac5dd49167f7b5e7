// Stage 2, authorize: the block list first (a blocked address is refused whatever
// key it shows), then the key, both in one LMDB read snapshot.
#include <netinet/in.h>

#include <algorithm>

#include "path.hpp"
#include "ringrelay/common.hpp"

namespace rr::gateway {
namespace {

bool address_blocked(store::Reader& reader, const io::PeerAddress& peer, std::int64_t now) {
    if (peer.family == 0) return false;
    IpAddress addr;
    addr.family = peer.family == AF_INET ? 4 : 6;
    std::copy(peer.bytes, peer.bytes + 16, addr.bytes.begin());
    return reader.find_block(unmap_ipv4(addr), now).valid();
}

void copy_key(const store::KeyView& k, store::Reader& reader, KeyInfo& key) {
    key.id.assign(k.id());
    key.group.assign(k.group());
    key.models.assign(k.models().text());
    key.max_concurrency = k.max_concurrency() == 0 ? 1 : k.max_concurrency();
    key.max_wait = k.max_wait();
    key.rpm = k.rpm();
    key.tpm = k.tpm();
    key.quota = k.quota();
    key.tokens_used = key.quota ? reader.usage(key.id).tokens() : 0;
    key.key_hash = key_hash_of(key.id);
}

}  // namespace

Outcome authorize(GatewayRequest& req) {
    store::Reader& reader = req.sg.reader();
    store::ReadScope scope(reader);
    if (!scope.ok())
        return req.reject_with(503, "store_unavailable", "key store unavailable: " + scope.status().message, false);
    const std::int64_t now = now_unix_ms();
    if (address_blocked(reader, req.cs.peer, now))
        return Outcome::rejected(403, "ip_blocked", "client address is blocked", false);
    if (!req.secret_hash) return Outcome::rejected(401, "invalid_api_key", "invalid api key", false);
    const store::KeyMatch match = reader.find_key(*req.secret_hash);
    switch (store::classify(match, now)) {
    case store::KeyStanding::ok:
        break;
    case store::KeyStanding::unknown:
        return Outcome::rejected(401, "invalid_api_key", "invalid api key", false);
    case store::KeyStanding::revoked:
        return Outcome::rejected(401, "key_revoked", "api key has been revoked", false);
    case store::KeyStanding::expired:
    case store::KeyStanding::rotated_past_grace:
        return Outcome::rejected(401, "key_expired", "api key has expired", false);
    }
    copy_key(match.key, reader, req.key);
    req.rc.attribution.api_key_id = req.key.id;
    return Outcome::proceed();
}

}  // namespace rr::gateway

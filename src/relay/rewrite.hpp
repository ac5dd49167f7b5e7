// The header rewriting a proxy does, in both directions (RFC 9110 7.6: hop-by-hop
// fields dropped, the framing chosen by us; SPEC.md section 3 for the rest).
#pragma once

#include <string>
#include <string_view>

#include "ringrelay/http.hpp"
#include "ringrelay/upstream/target.hpp"

namespace rr::relay {

struct ForwardPlan;
struct PeerAddress;

// Appends the request head to send upstream: the client's end-to-end fields,
// Host set to the upstream's, X-Forwarded-For extended with the client address,
// X-Request-Id, the plan's extra lines, and the body framing.
void append_upstream_head(std::string& out, const http::RequestHead& h, const upstream::UpstreamTarget& t,
                          const ForwardPlan& plan, const PeerAddress& peer, std::string_view request_id);

// How the response body travels to the client.
enum class ClientFraming {
    as_upstream,  // content-length / none: bytes as they are
    chunked,      // upstream chunked, client HTTP/1.1: chunked bytes as they are
    dechunk,      // upstream chunked, client HTTP/1.0: decoded, close-delimited
    until_close,  // close-delimited: the client connection ends with the body
};

ClientFraming choose_framing(const http::ResponseHead& r, int client_version_minor) noexcept;

// Appends the response head for the client: the upstream's status and end-to-end
// fields, our X-Request-Id, the framing, and Connection as decided.
void append_client_head(std::string& out, const http::ResponseHead& r, ClientFraming framing,
                        std::string_view request_id, bool keep_alive, int client_version_minor);

// A client-supplied X-Request-Id is passed on only when it is short printable
// ASCII; anything else is replaced by a fresh id.
bool acceptable_request_id(std::string_view v) noexcept;

}  // namespace rr::relay

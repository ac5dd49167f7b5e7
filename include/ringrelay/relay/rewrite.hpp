// The header rewriting a proxy does, in both directions (RFC 9110 7.6: hop-by-hop
// fields dropped, the framing chosen by us; REFERENCE.md section 3 for the rest).
//
// Pure functions on the shard's thread (no I/O, no shared state): they read the
// parsed head and the views passed in during the call only and append to (or fill)
// caller-owned strings; a CapturedRequest owns its copies, so it outlives the receive
// buffers. The head was validated by the parser, so there is nothing to refuse here;
// the only failure is std::bad_alloc from a growing string.
#pragma once

#include <string>
#include <string_view>

#include "ringrelay/http.hpp"
#include "ringrelay/io/peer_address.hpp"
#include "ringrelay/upstream/target.hpp"

namespace rr::relay {

using io::PeerAddress;

// What of the client's request head goes upstream, copied out of the receive
// buffers (so the head's views may die before the upstream is chosen).
struct CapturedRequest {
    std::string line;            // "METHOD /target?query"
    std::size_t method_len = 0;  // line[0, method_len) is the method
    std::string fields;          // end-to-end fields + X-Forwarded-For + X-Request-Id, "Name: value\r\n" each
    // Gateway only: the client's billing headers, kept out of `fields` ("Name: value\r\n"
    // lines as sent, usually empty). They pick what the channel's account is billed
    // for, so only a channel that lets them pass adds them (its pass_headers).
    std::string openai_organization;
    std::string openai_project;
    void clear() noexcept {
        line.clear();
        fields.clear();
        openai_organization.clear();
        openai_project.clear();
        method_len = 0;
    }
};

// Fills out from h: hop-by-hop fields (and those Connection names), Host, Expect and
// the client's X-Request-Id dropped; X-Forwarded-For extended with the peer; ours
// X-Request-Id added. strip_client_auth drops Authorization and x-api-key (the
// gateway sets the channel's own) and moves OpenAI-Organization / OpenAI-Project
// out of the fields into their own members (the channel decides); replace_body drops
// Content-Length (the gateway sends a body of its own length). The gateway passes
// both, and also drops Accept-Encoding: it reads token usage from the response as it
// passes, which a compressed body would hide (and with it TPM and quota).
void capture_request(CapturedRequest& out, const http::RequestHead& h, const PeerAddress& peer,
                     std::string_view request_id, bool strip_client_auth, bool replace_body);

// Appends the upstream request head: request line (with the target's base path),
// Host, the captured fields, extra_headers, and the framing: Content-Length:
// replaced_body_length when the body is replaced, else Transfer-Encoding: chunked
// for a chunked client body (a client Content-Length is among the fields).
void append_upstream_head(std::string& out, const CapturedRequest& req, const upstream::UpstreamTarget& t,
                          std::string_view extra_headers, http::BodyKind client_body,
                          const std::size_t* replaced_body_length);

// How the response body travels to the client.
enum class ClientFraming {
    as_upstream,  // content-length / none: bytes as they are
    chunked,      // upstream chunked, client HTTP/1.1: chunked bytes as they are
    dechunk,      // upstream chunked, client HTTP/1.0: decoded, close-delimited
    until_close,  // close-delimited: the client connection ends with the body
    early_wrap,   // into an early SSE response: payload re-framed by append_stream_piece
};

ClientFraming choose_framing(const http::ResponseHead& r, int client_version_minor) noexcept;

// Upstream response fields the client must not see. The gateway hides the channel
// account's OpenAI-Organization / OpenAI-Project (they name the reseller's upstream
// account) unless the channel passes the client's own (its pass_headers).
struct HiddenResponseFields {
    bool openai_organization = false;
    bool openai_project = false;
};

// Appends the response head for the client: the upstream's status and end-to-end
// fields (less the hidden ones), our X-Request-Id, the framing, and Connection as decided.
void append_client_head(std::string& out, const http::ResponseHead& r, ClientFraming framing,
                        std::string_view request_id, bool keep_alive, int client_version_minor,
                        HiddenResponseFields hidden = {});

// A client-supplied X-Request-Id is passed on only when it is short printable
// ASCII; anything else is replaced by a fresh id.
bool acceptable_request_id(std::string_view v) noexcept;

}  // namespace rr::relay

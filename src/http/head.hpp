// The parts of a message head that requests and responses share: the HTTP-version
// token, the field-line section, and the framing fields (Content-Length,
// Transfer-Encoding, Connection). Internal to src/http.
//
// Every scanner works on the buffer already clipped to Limits::max_head_bytes and
// advances `pos` only on Scan::ok, so the callers stay stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringrelay/http.hpp"

namespace rr::http::detail {

enum class Scan : std::uint8_t { ok, incomplete, error };

// Records why a scan failed and says it did (the parsers' one way to give up).
inline Scan fail(Error& err, Error e = Error::bad_request) noexcept {
    err = e;
    return Scan::error;
}

// Matches HTTP-version ("HTTP/" DIGIT "." DIGIT, RFC 9112 2.3) at head[pos..].
// error: bad_request for anything else, version_not_supported for a well-formed
// version other than 1.0 / 1.1. On ok, minor is 0 or 1.
Scan scan_version(std::string_view head, std::size_t& pos, int& minor, Error& err) noexcept;

// Matches CRLF at head[pos..]; a bare CR or LF is bad_request.
Scan scan_crlf(std::string_view head, std::size_t& pos, Error& err) noexcept;

// Scans field lines from head[pos..] through the empty line that ends the head,
// storing up to max_fields of them. On ok, pos is just past the final CRLF.
// error: bad_request for any syntax fault, header_too_large on field max_fields+1.
Scan scan_field_lines(std::string_view head, std::size_t& pos, Header* fields, std::size_t max_fields,
                      std::size_t& count, Error& err) noexcept;

// What the framing fields of one message said, accumulated field by field.
struct Framing {
    bool has_content_length = false;
    std::uint64_t content_length = 0;
    bool has_transfer_encoding = false;
    bool te_chunked_seen = false;       // "chunked" appeared in the coding list
    bool te_chunked_not_final = false;  // some coding followed a "chunked"
    bool te_other_coding = false;       // a coding other than "chunked" appeared
    bool te_final_chunked = false;      // the last coding is "chunked"
    bool connection_close = false;
    bool connection_keep_alive = false;
    std::string_view first_connection;
};

// Folds one field into f when it is Content-Length, Transfer-Encoding or
// Connection; returns true if it was one of them. An invalid value of one of them
// (non-digit or overflowing or differing Content-Length, a non-token coding or
// option) sets err to bad_request.
bool note_framing_field(Framing& f, const Header& h, Error& err) noexcept;

// Keep-alive by version default (1.1 persistent, 1.0 not) and Connection options.
inline bool keep_alive_for(int minor, const Framing& f) noexcept {
    if (f.connection_close) return false;
    return minor == 1 || f.connection_keep_alive;
}

}  // namespace rr::http::detail

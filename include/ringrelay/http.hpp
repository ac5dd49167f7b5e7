// HTTP/1.1 message framing: request and response head parsers and the chunked
// body decoder. The contract follows picohttpparser: the caller owns the bytes, the
// parser fills views into them and answers complete / incomplete / error. No
// allocation, no callbacks on the head path, no hidden state: parsing the same
// prefix twice gives the same answer, so a caller that received more bytes simply
// parses again from the start of the head. Every prefix of a valid head answers
// incomplete (never error), and every error is decided by a prefix: once a prefix
// is an error, every longer buffer is too.
//
// Lifetime: every std::string_view in RequestHead / ResponseHead points into the
// buffer passed to parse_*; it is valid exactly as long as that buffer is. The one
// exception is RequestHead::path for an absolute-form target without a path
// ("GET http://h HTTP/1.1"), which is the static string "/".
//
// Cost: one pass over the head with a table lookup per byte, then one pass over
// the stored fields (a switch on name length) for framing and shortcuts. Measured
// here (g++ 12 -O3): ~0.4 us for a 500-byte OpenAI SDK request head, ~0.8 ns/byte.
// A caller that re-parses after every read pays that again per read; the head is
// bounded by max_head_bytes, so the total stays bounded too.
//
// Strictness follows RFC 9112: see docs/ARCHITECTURE.md "HTTP parsing" for the
// list of rejected inputs and the status each maps to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace rr::http {

// What went wrong, and which status the gateway answers with.
enum class Error : std::uint8_t {
    none = 0,
    bad_request,            // 400: malformed syntax, CL+TE, differing CLs, obs-fold, bare CR, NUL ...
    uri_too_long,           // 414: request line longer than Limits::max_request_line
    header_too_large,       // 431: head longer than Limits::max_head_bytes or too many fields
    version_not_supported,  // 505: anything but HTTP/1.0 and HTTP/1.1
    not_implemented,        // 501: a Transfer-Encoding other than "chunked"
    bad_chunk,              // 400: bad chunk size line, over-long extension, missing CRLF
    body_too_large,         // 413: declared or decoded body over the caller's limit
};

// The status code to answer with for an Error (400 for none, which callers never pass).
int status_for(Error e) noexcept;
// A short human sentence for an Error, for the JSON error body ("" never returned).
std::string_view message_for(Error e) noexcept;
// The reason phrase of a status line ("Too Many Requests" for 429), RFC 9110's names;
// "Status" for a code it does not name (clients must not rely on reason phrases).
std::string_view reason_phrase(int status) noexcept;

enum class ParseStatus : std::uint8_t { complete, incomplete, error };

struct Limits {
    std::size_t max_request_line = 8 * 1024;   // longer -> uri_too_long (status line: header_too_large)
    std::size_t max_head_bytes = 64 * 1024;    // whole head incl. request line -> header_too_large
    std::size_t max_headers = 100;             // more fields -> header_too_large (capped at kMaxHeaders)
};

struct Header {
    std::string_view name;   // as sent (case preserved); compare with iequals()
    std::string_view value;  // leading/trailing OWS removed
};

inline constexpr std::size_t kMaxHeaders = 128;

enum class BodyKind : std::uint8_t {
    none,            // no body (requests without CL/TE; 1xx/204/304 responses; HEAD answers)
    content_length,  // exactly content_length bytes follow (possibly 0)
    chunked,         // Transfer-Encoding: chunked (final coding)
    until_close,     // responses only: body ends when the upstream closes
};

struct RequestHead {
    RequestHead() noexcept {}  // leaves headers[] uninitialised, see below
    std::string_view method;
    std::string_view target;  // request-target as sent ("/v1/chat?x=1")
    std::string_view path;    // target up to '?' (absolute-form: the path after the authority)
    std::string_view query;   // after '?', without it; empty if none
    int version_minor = 1;    // HTTP/1.<minor>, 0 or 1
    // Only [0, header_count) is ever written or read. Left uninitialised on purpose:
    // zeroing 4 KiB for every message showed up in the relay's profile.
    union {
        Header headers[kMaxHeaders];
    };
    std::size_t header_count = 0;
    std::size_t head_length = 0;  // bytes of the head including the final CRLF CRLF
                                  // (and any empty lines skipped before the request line)

    BodyKind body = BodyKind::none;
    std::uint64_t content_length = 0;  // valid when body == content_length
    bool keep_alive = true;            // after applying version default and Connection tokens
    bool expect_continue = false;      // "Expect: 100-continue" on HTTP/1.1 (ignored on 1.0, RFC 9110 10.1.1)

    // Shortcuts to fields the proxy needs on every request (empty view if absent).
    std::string_view host;           // Host value; for an absolute-form target, its authority (RFC 9112 3.2.2)
    std::string_view authorization;  // at most one is accepted (a second is bad_request)
    std::string_view x_api_key;      // at most one is accepted (a second is bad_request)
    std::string_view x_request_id;   // the first one
    std::string_view connection;     // first Connection value; see is_hop_by_hop(name, fields())

    // The header_count parsed fields, in the order sent.
    std::span<const Header> fields() const noexcept { return {headers, header_count}; }
};

struct ResponseHead {
    ResponseHead() noexcept {}
    int status = 0;
    std::string_view reason;  // may be empty ("HTTP/1.1 200\r\n" is accepted)
    int version_minor = 1;
    // Only [0, header_count) is ever written or read. Left uninitialised on purpose:
    // zeroing 4 KiB for every message showed up in the relay's profile.
    union {
        Header headers[kMaxHeaders];
    };
    std::size_t header_count = 0;
    std::size_t head_length = 0;

    BodyKind body = BodyKind::none;
    std::uint64_t content_length = 0;  // the Content-Length value when one was sent
    bool keep_alive = true;  // whether the connection may be reused after this body
    std::string_view connection;  // first Connection value

    std::span<const Header> fields() const noexcept { return {headers, header_count}; }
};

struct ParseResult {
    ParseStatus status;
    Error error = Error::none;
};

// Parses a request head from buf[0..]. On complete, out is filled and
// out.head_length says where the body starts. On incomplete, nothing in out is
// meaningful; call again with a longer buffer. On error, .error says why
// (bad_request, uri_too_long, header_too_large, version_not_supported,
// not_implemented). Limits are enforced on incomplete input too (a 9 KiB request
// line without CRLF is already uri_too_long). Empty lines (CRLF) before the request
// line are skipped (RFC 9112 2.2) and counted in head_length.
ParseResult parse_request(std::string_view buf, RequestHead& out, const Limits& limits = {}) noexcept;

// Parses a response head. request_was_head / the status decide BodyKind::none
// for HEAD answers, 1xx, 204 and 304. A response with neither Content-Length nor
// chunked is until_close and never keep_alive. Errors: bad_request (syntax, CL+TE,
// status outside 100..599), header_too_large (status line over max_request_line,
// head over max_head_bytes, too many fields), version_not_supported.
ParseResult parse_response(std::string_view buf, ResponseHead& out, bool request_was_head = false,
                           const Limits& limits = {}) noexcept;

// Request methods are case-sensitive (RFC 9110 9.1): "head" or "Get" are extension
// methods of their own, never HEAD or GET. Every question "is this HEAD / GET / POST"
// in the relay and the gateway is asked through method_of(), so there is one rule.
enum class Method : std::uint8_t { get, head, post, put, del, patch, options, other };

// The standard method the token names exactly (byte for byte), else Method::other.
Method method_of(std::string_view token) noexcept;

// ASCII case-insensitive comparison for header names and tokens.
// Inline: it runs for several fields of every message (a call per byte pair showed
// in the relay's profile).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (static_cast<unsigned>(x - 'A') < 26u) x |= 0x20;
        if (static_cast<unsigned>(y - 'A') < 26u) y |= 0x20;
        if (x != y) return false;
    }
    return true;
}

// The first field named `name` (case-insensitive), or nullptr.
const Header* find_field(std::span<const Header> fields, std::string_view name) noexcept;

// True for the hop-by-hop fields of RFC 9110 7.6.1 that a proxy never forwards:
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
// Proxy-Authenticate, Proxy-Authorization, plus any field named in connection_value
// (the Connection header's comma-separated token list).
bool is_hop_by_hop(std::string_view name, std::string_view connection_value) noexcept;
// The same, taking the options of every Connection field in `fields` (a message may
// split its Connection list over several lines; the `connection` shortcut holds
// only the first).
bool is_hop_by_hop(std::string_view name, std::span<const Header> fields) noexcept;

// Incremental decoder for a chunked body. It tracks framing only and never copies:
// feed() reports which bytes of `in` belong to this message (everything up to and
// including the CRLF that ends the trailer section) and hands the chunk payload
// spans to on_data, so a caller can forward the raw bytes untouched and still see
// the decoded data (for JSON) or find the end of the message (for keep-alive).
//
// Grammar (RFC 9112 7.1): a chunk size of 1..16 hex digits (more is bad_chunk, so
// it never overflows), optional extensions checked against RFC 9112 7.1.1 and not
// interpreted (chunk-ext = *( BWS ";" BWS token [ BWS "=" BWS ( token /
// quoted-string ) ] ); anything else, such as a ';' with no name or a quoted string
// left open at the CR, is bad_chunk, and so is a size line over kMaxSizeLine bytes), CRLF, data,
// CRLF; the last chunk "0" is followed by trailer fields (field-line syntax, each
// at most kMaxTrailerLine bytes, together at most kMaxTrailerBytes) and CRLF.
// Bare LF is never accepted as a line end.
class ChunkedDecoder {
public:
    static constexpr std::uint32_t kMaxSizeLine = 4 * 1024;
    static constexpr std::uint32_t kMaxTrailerLine = 4 * 1024;
    static constexpr std::uint32_t kMaxTrailerBytes = 8 * 1024;

    struct Result {
        std::size_t consumed = 0;  // bytes of `in` that belong to this body (on error: offset of the bad byte)
        bool done = false;         // the last chunk and trailers are complete
        Error error = Error::none; // bad_chunk or body_too_large; sticky: later feeds repeat it
    };

    explicit ChunkedDecoder(std::uint64_t max_body = UINT64_MAX) noexcept : max_body_(max_body) {}

    // on_data(std::string_view payload) is called for each payload span in order;
    // the spans point into `in`. max_body is checked against each chunk size as
    // soon as its size line ends, before any of its data is handed out.
    // Once done, feed() consumes nothing more (the rest is the next message).
    template <class OnData>
    Result feed(std::string_view in, OnData&& on_data) noexcept;

    // Payload bytes handed to on_data so far.
    std::uint64_t decoded_bytes() const noexcept { return total_; }
    bool done() const noexcept { return state_ == State::done; }
    void reset(std::uint64_t max_body = UINT64_MAX) noexcept { *this = ChunkedDecoder(max_body); }

private:
    enum class State : std::uint8_t {
        // The size line (every state up to size_lf): digits, BWS, the extensions, its LF.
        size, size_lws, ext_name_start, ext_name, ext_name_bws, ext_value_start, ext_token, ext_quoted,
        ext_quoted_pair, ext_quoted_end, ext_value_end, size_lf,
        data, data_cr, data_lf, trailer_start, trailer_name, trailer_line, trailer_lf, final_lf, done, failed
    };
    // Steps over framing bytes from in[pos..]; returns the new position (on error,
    // the position of the offending byte). Defined in chunked.cpp; feed() only adds
    // the payload fast path around it.
    std::size_t step_framing(std::string_view in, std::size_t pos, Error& err) noexcept;
    std::size_t fail(std::size_t pos, Error e, Error& err) noexcept;
    bool count_line_byte() noexcept;
    Error on_size_line_byte(char c) noexcept;
    Error on_extension_byte(char c) noexcept;
    Error on_trailer_byte(char c) noexcept;
    Error enter(State s) noexcept {
        state_ = s;
        return Error::none;
    }

    State state_ = State::size;
    Error error_ = Error::none;
    std::uint8_t size_digits_ = 0;
    std::uint32_t line_bytes_ = 0;     // bytes of the current size/extension/trailer line
    std::uint32_t trailer_bytes_ = 0;  // bytes of the trailer section so far
    std::uint64_t chunk_left_ = 0;
    std::uint64_t total_ = 0;
    std::uint64_t max_body_;
    friend struct ChunkedDecoderTestAccess;
};

template <class OnData>
ChunkedDecoder::Result ChunkedDecoder::feed(std::string_view in, OnData&& on_data) noexcept {
    Result r;
    std::size_t pos = 0;
    if (state_ == State::failed) {
        r.error = error_;
        return r;
    }
    while (pos < in.size() && state_ != State::done) {
        if (state_ == State::data) {
            const std::size_t n = static_cast<std::size_t>(
                chunk_left_ < in.size() - pos ? chunk_left_ : in.size() - pos);
            on_data(std::string_view(in.data() + pos, n));
            pos += n;
            chunk_left_ -= n;
            total_ += n;
            if (chunk_left_ == 0) state_ = State::data_cr;
            continue;
        }
        pos = step_framing(in, pos, r.error);
        if (r.error != Error::none) {
            r.consumed = pos;
            return r;
        }
    }
    r.consumed = pos;
    r.done = state_ == State::done;
    return r;
}

}  // namespace rr::http

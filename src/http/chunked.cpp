// Chunked transfer coding framing (RFC 9112 7.1): the byte-at-a-time state machine
// for everything that is not payload. Payload bytes never come here: feed() in
// ringrelay/http.hpp hands them out in whole spans, so this switch runs only over
// size lines, CRLFs and trailers (a few bytes per chunk).
#include "ringrelay/http.hpp"
#include "syntax.hpp"

namespace rr::http {

std::size_t ChunkedDecoder::fail(std::size_t pos, Error e, Error& err) noexcept {
    state_ = State::failed;
    error_ = e;
    err = e;
    return pos;
}

// Counts one more byte of the current size line or trailer line (CRLF included)
// and of the trailer section; false once a bound is passed. The bounds keep a peer
// from making us scan an endless extension or trailer while no payload moves
// ("extension abuse").
bool ChunkedDecoder::count_line_byte() noexcept {
    if (state_ <= State::size_lf) return ++line_bytes_ <= kMaxSizeLine;
    if (state_ >= State::trailer_start) {
        return ++line_bytes_ <= kMaxTrailerLine && ++trailer_bytes_ <= kMaxTrailerBytes;
    }
    return true;
}

// chunk-size [ chunk-ext ] CRLF. The size is known once its LF arrives.
Error ChunkedDecoder::on_size_line_byte(char c) noexcept {
    switch (state_) {
        case State::size: {
            const int digit = detail::hex_value(c);
            if (digit >= 0) {
                // 16 hex digits fill a uint64_t exactly: refusing a 17th digit is the
                // whole overflow check (leading zeros count too).
                if (size_digits_ == 16) return Error::bad_chunk;
                chunk_left_ = (chunk_left_ << 4) | static_cast<std::uint64_t>(digit);
                ++size_digits_;
                return Error::none;
            }
            if (size_digits_ == 0) return Error::bad_chunk;
            if (c == ';') return enter(State::ext_name_start);
            if (detail::is_ows(c)) return enter(State::size_lws);
            if (c == '\r') return enter(State::size_lf);
            return Error::bad_chunk;
        }
        case State::size_lws:
            // BWS is allowed only before a ';' (chunk-ext = *( BWS ";" ... )).
            if (c == ';') return enter(State::ext_name_start);
            return detail::is_ows(c) ? Error::none : Error::bad_chunk;
        case State::size_lf:
            break;
        default:
            return on_extension_byte(c);
    }
    // State::size_lf
    if (c != '\n') return Error::bad_chunk;
    if (chunk_left_ > max_body_ - total_) return Error::body_too_large;
    line_bytes_ = 0;
    size_digits_ = 0;
    return enter(chunk_left_ == 0 ? State::trailer_start : State::data);
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), the name a
// token, the value a token or a quoted-string (RFC 9112 7.1.1, RFC 9110 5.6.4). Not
// interpreted, but checked: a peer that reads a malformed extension differently
// (a quoted string running past the CRLF, say) would frame the body differently, so
// nothing malformed is passed on. Whitespace is allowed only where BWS is: around
// ';' and '=', never just before the CRLF.
Error ChunkedDecoder::on_extension_byte(char c) noexcept {
    switch (state_) {
        case State::ext_name_start:  // after ';'
            if (detail::is_ows(c)) return Error::none;
            return detail::is_token_char(c) ? enter(State::ext_name) : Error::bad_chunk;
        case State::ext_name:
            if (detail::is_token_char(c)) return Error::none;
            if (c == '=') return enter(State::ext_value_start);
            if (detail::is_ows(c)) return enter(State::ext_name_bws);
            break;
        case State::ext_name_bws:  // BWS after a name: '=' or the next ';' must follow
            if (detail::is_ows(c)) return Error::none;
            if (c == '=') return enter(State::ext_value_start);
            return c == ';' ? enter(State::ext_name_start) : Error::bad_chunk;
        case State::ext_value_start:  // after '='
            if (detail::is_ows(c)) return Error::none;
            if (c == '"') return enter(State::ext_quoted);
            return detail::is_token_char(c) ? enter(State::ext_token) : Error::bad_chunk;
        case State::ext_token:
            if (detail::is_token_char(c)) return Error::none;
            if (detail::is_ows(c)) return enter(State::ext_value_end);
            break;
        case State::ext_quoted:  // qdtext: HTAB, SP, VCHAR but '"' and '\', obs-text
            if (c == '"') return enter(State::ext_quoted_end);
            if (c == '\\') return enter(State::ext_quoted_pair);
            return detail::is_value_char(c) ? Error::none : Error::bad_chunk;
        case State::ext_quoted_pair:  // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            return detail::is_value_char(c) ? enter(State::ext_quoted) : Error::bad_chunk;
        case State::ext_quoted_end:  // just after the closing quote
            if (detail::is_ows(c)) return enter(State::ext_value_end);
            break;
        default:  // State::ext_value_end: BWS after a value, then the next ';' only
            if (detail::is_ows(c)) return Error::none;
            return c == ';' ? enter(State::ext_name_start) : Error::bad_chunk;
    }
    // After a name or a value: the next extension or the end of the line.
    if (c == ';') return enter(State::ext_name_start);
    return c == '\r' ? enter(State::size_lf) : Error::bad_chunk;
}

// trailer-section = *( field-line CRLF ) CRLF, after the last chunk.
Error ChunkedDecoder::on_trailer_byte(char c) noexcept {
    switch (state_) {
        case State::trailer_start:
            // A trailer line starts with its name; SP/HTAB here would be obs-fold,
            // as forbidden in trailers as in the head (RFC 9112 5.2).
            if (c == '\r') return enter(State::final_lf);
            return detail::is_token_char(c) ? enter(State::trailer_name) : Error::bad_chunk;
        case State::trailer_name:
            if (c == ':') return enter(State::trailer_line);
            return detail::is_token_char(c) ? Error::none : Error::bad_chunk;
        case State::trailer_line:
            if (c == '\r') return enter(State::trailer_lf);
            return detail::is_value_char(c) ? Error::none : Error::bad_chunk;
        case State::trailer_lf:
            if (c != '\n') return Error::bad_chunk;
            line_bytes_ = 0;
            return enter(State::trailer_start);
        default:  // State::final_lf
            return c == '\n' ? enter(State::done) : Error::bad_chunk;
    }
}

std::size_t ChunkedDecoder::step_framing(std::string_view in, std::size_t pos, Error& err) noexcept {
    if (state_ == State::failed) return fail(pos, error_, err);
    for (; pos < in.size(); ++pos) {
        if (state_ == State::data || state_ == State::done) return pos;
        if (!count_line_byte()) return fail(pos, Error::bad_chunk, err);
        const char c = in[pos];
        Error e = Error::none;
        if (state_ <= State::size_lf) {
            e = on_size_line_byte(c);
        } else if (state_ == State::data_cr) {
            e = c == '\r' ? enter(State::data_lf) : Error::bad_chunk;
        } else if (state_ == State::data_lf) {
            e = c == '\n' ? enter(State::size) : Error::bad_chunk;
        } else {
            e = on_trailer_byte(c);
        }
        if (e != Error::none) return fail(pos, e, err);
    }
    return pos;
}

}  // namespace rr::http

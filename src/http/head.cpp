#include "head.hpp"

#include "syntax.hpp"

namespace rr::http::detail {

namespace {

Error note_content_length(Framing& f, std::string_view value) noexcept {
    // RFC 9112 6.3 (5): a list of identical values ("5, 5", or the same value on two
    // lines) is one length; anything else, including an empty element, is invalid.
    const bool ok = for_each_list_element(value, [&f](std::string_view element) {
        std::uint64_t n = 0;
        if (!parse_decimal(element, n)) return false;
        if (f.has_content_length && n != f.content_length) return false;
        f.has_content_length = true;
        f.content_length = n;
        return true;
    });
    return ok ? Error::none : Error::bad_request;
}

Error note_transfer_encoding(Framing& f, std::string_view value) noexcept {
    // Codings with parameters ("gzip;q=1") are not tokens and are refused with the
    // rest of the malformed lists: no client sends them on a request.
    bool any_coding = false;
    const bool ok = for_each_list_element(value, [&f, &any_coding](std::string_view coding) {
        if (coding.empty()) return true;  // RFC 9110 5.6.1.2: ignore empty elements
        if (!is_token(coding)) return false;
        any_coding = true;
        if (f.te_chunked_seen) f.te_chunked_not_final = true;
        f.te_final_chunked = iequals(coding, "chunked");
        if (f.te_final_chunked) {
            f.te_chunked_seen = true;
        } else {
            f.te_other_coding = true;
        }
        return true;
    });
    f.has_transfer_encoding = true;
    return ok && any_coding ? Error::none : Error::bad_request;
}

Error note_connection(Framing& f, std::string_view value) noexcept {
    if (f.first_connection.data() == nullptr) f.first_connection = value;
    const bool ok = for_each_list_element(value, [&f](std::string_view option) {
        if (option.empty()) return true;
        if (!is_token(option)) return false;
        if (iequals(option, "close")) f.connection_close = true;
        if (iequals(option, "keep-alive")) f.connection_keep_alive = true;
        return true;
    });
    return ok ? Error::none : Error::bad_request;
}

}  // namespace

Scan scan_version(std::string_view head, std::size_t& pos, int& minor, Error& err) noexcept {
    // Checked byte by byte against the pattern so that a wrong prefix ("HTTX")
    // fails at once and a right one ("HTT") waits for more.
    static constexpr std::string_view pattern = "HTTP/0.0";
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pos + i == head.size()) return Scan::incomplete;
        const char c = head[pos + i];
        const bool ok = pattern[i] == '0' ? (c >= '0' && c <= '9') : c == pattern[i];
        if (!ok) return fail(err);
    }
    const char major = head[pos + 5];
    const char minor_digit = head[pos + 7];
    if (major != '1' || (minor_digit != '0' && minor_digit != '1')) {
        return fail(err, Error::version_not_supported);
    }
    minor = minor_digit - '0';
    pos += pattern.size();
    return Scan::ok;
}

Scan scan_crlf(std::string_view head, std::size_t& pos, Error& err) noexcept {
    if (pos == head.size()) return Scan::incomplete;
    if (head[pos] != '\r') return fail(err);
    if (pos + 1 == head.size()) return Scan::incomplete;
    if (head[pos + 1] != '\n') return fail(err);
    pos += 2;
    return Scan::ok;
}

Scan scan_field_lines(std::string_view head, std::size_t& pos, Header* fields, std::size_t max_fields,
                      std::size_t& count, Error& err) noexcept {
    const char* const begin = head.data();
    const char* const end = begin + head.size();
    const char* p = begin + pos;
    count = 0;
    for (;;) {
        if (p == end) return Scan::incomplete;
        if (*p == '\r') {
            std::size_t at = static_cast<std::size_t>(p - begin);
            const Scan s = scan_crlf(head, at, err);
            if (s == Scan::ok) pos = at;
            return s;
        }
        if (count == max_fields) return fail(err, Error::header_too_large);

        const char* const name = p;
        while (p != end && is_token_char(*p)) ++p;
        if (p == end) return Scan::incomplete;
        // The first byte after the name must be the colon, right after a non-empty
        // name. This one test rejects obs-fold and whitespace before the first field
        // (RFC 9112 5.2, 2.2), whitespace before the colon (5.1), empty and
        // non-token names, and lines without a colon (including a bare LF).
        if (*p != ':' || p == name) return fail(err);
        const std::string_view field_name(name, static_cast<std::size_t>(p - name));

        ++p;
        while (p != end && is_ows(*p)) ++p;
        const char* const value = p;
        while (p != end && is_value_char(*p)) ++p;
        if (p == end) return Scan::incomplete;
        // Stopped on something that is not field-vchar, SP or HTAB: only CRLF may
        // end the line; NUL, other CTLs, DEL, a bare LF or a bare CR are errors
        // (RFC 9110 5.5, RFC 9112 2.2).
        if (*p != '\r') return fail(err);
        if (p + 1 == end) return Scan::incomplete;
        if (p[1] != '\n') return fail(err);

        const char* value_end = p;
        while (value_end != value && is_ows(value_end[-1])) --value_end;
        fields[count++] = Header{field_name, std::string_view(value, static_cast<std::size_t>(value_end - value))};
        p += 2;
    }
}

bool note_framing_field(Framing& f, const Header& h, Error& err) noexcept {
    Error e = Error::none;
    switch (h.name.size()) {
        case 10:
            if (!iequals(h.name, "connection")) return false;
            e = note_connection(f, h.value);
            break;
        case 14:
            if (!iequals(h.name, "content-length")) return false;
            e = note_content_length(f, h.value);
            break;
        case 17:
            if (!iequals(h.name, "transfer-encoding")) return false;
            e = note_transfer_encoding(f, h.value);
            break;
        default:
            return false;
    }
    if (e != Error::none) err = e;
    return true;
}

}  // namespace rr::http::detail

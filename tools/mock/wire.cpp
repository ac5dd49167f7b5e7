#include "wire.hpp"

#include <charconv>

#include "ringrelay/http.hpp"

namespace rr::mock {

void append_uint(std::string& out, std::uint64_t v) {
    char digits[20];
    const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    out.append(digits, end);
}

void append_head(std::string& out, const HeadSpec& spec) {
    out += "HTTP/1.1 ";
    append_uint(out, static_cast<std::uint64_t>(spec.status));
    out += ' ';
    out += http::reason_phrase(spec.status);
    out += "\r\nServer: ringrelay-mock\r\n";
    if (spec.framing != Framing::none) {
        out += "Content-Type: ";
        out += spec.content_type;
        out += "\r\n";
    }
    if (spec.event_stream) out += "Cache-Control: no-cache\r\n";
    if (spec.openai_account) {
        out.append("openai-organization: ").append(kMockOrganization).append("\r\n");
        out.append("openai-project: ").append(kMockProject).append("\r\n");
    }
    if (spec.framing == Framing::content_length) {
        out += "Content-Length: ";
        append_uint(out, spec.content_length);
        out += "\r\n";
    } else if (spec.framing == Framing::chunked) {
        out += "Transfer-Encoding: chunked\r\n";
    }
    if (!spec.keep_alive)
        out += "Connection: close\r\n";
    else if (spec.http10_peer)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
}

void append_chunk(std::string& out, std::string_view payload) {
    if (payload.empty()) return;
    char hex[16];
    const auto end = std::to_chars(hex, hex + sizeof hex, payload.size(), 16).ptr;
    out.append(hex, end);
    out += "\r\n";
    out += payload;
    out += "\r\n";
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF count as invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) len = 2;
    else if (lead == 0xE0) { len = 3; lo = 0xA0; }
    else if (lead == 0xED) { len = 3; hi = 0x9F; }
    else if (lead >= 0xE1 && lead <= 0xEF) len = 3;
    else if (lead == 0xF0) { len = 4; lo = 0x90; }
    else if (lead == 0xF4) { len = 4; hi = 0x8F; }
    else if (lead >= 0xF1 && lead <= 0xF3) len = 4;
    else return 0;
    if (i + len > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < len; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return len;
}

void append_u_escape(std::string& out, unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\u00";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t len = utf8_sequence_length(s, i);
            if (len == 0) {
                append_u_escape(out, c);
                ++i;
            } else {
                out.append(s.substr(i, len));
                i += len;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7F) append_u_escape(out, c);
                else out += static_cast<char>(c);
        }
        ++i;
    }
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    append_json_escaped(out, s);
    out += '"';
}

}  // namespace rr::mock

// HeadScan: decides when a head that arrives in pieces is worth parsing again, so
// a trickled head costs O(n), not O(n^2) (a 64 KiB head sent a byte at a time
// used to be parsed from its start 65,536 times).
//
// picohttpparser's last_len idea: after the first look, a head cannot be complete
// until its CRLF CRLF has arrived, and that can only be found in the new bytes
// (plus the 3 before them). So each byte is scanned for the end once, and the full
// parser runs only when
//   - the end (CRLF CRLF) has arrived,
//   - the bytes cross a parser limit (request line, head size): 414/431 are decided
//     as soon as the byte over the limit arrives, as before,
//   - or the bytes have doubled since the last parse, so a syntax error in a head
//     that never ends is still found while the head grows (at most 2x the bytes
//     later; total parse work stays under 2x the head).
// The parser is stateless, so parsing a longer prefix gives the answer it always
// gave; only how often it runs changes.
//
// A HeadScan is a few counters for one head (a fresh one per head); it keeps no
// view of the bytes it is shown. No allocation, no errors of its own.
#pragma once

#include <cstddef>
#include <string_view>

#include "ringrelay/http.hpp"

namespace rr::relay {

class HeadScan {
public:
    explicit HeadScan(const http::Limits& limits = {}) noexcept
        : line_limit_(limits.max_request_line), head_limit_(limits.max_head_bytes) {}

    // buf: all the head's bytes so far (always starting at the head's first byte,
    // and only ever growing). True when the full parser should look at it now.
    bool should_parse(std::string_view buf) noexcept {
        const std::size_t n = buf.size();
        bool parse = parsed_ == 0 || n >= 2 * parsed_ || crosses(line_limit_, n) || crosses(head_limit_, n);
        if (!parse) parse = end_arrived(buf);
        scanned_ = n;
        if (parse) parsed_ = n;
        return parse;
    }
    // Bytes looked at by the end search so far (for tests: the work is linear).
    std::size_t end_search_bytes() const noexcept { return searched_; }

private:
    bool crosses(std::size_t limit, std::size_t n) const noexcept { return parsed_ <= limit && n > limit; }
    bool end_arrived(std::string_view buf) noexcept {
        const std::size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
        searched_ += buf.size() - from;
        return buf.find("\r\n\r\n", from) != std::string_view::npos;
    }

    std::size_t line_limit_;
    std::size_t head_limit_;
    std::size_t scanned_ = 0;  // bytes already searched for the end
    std::size_t parsed_ = 0;   // bytes the parser last saw (0: not yet)
    std::size_t searched_ = 0;
};

}  // namespace rr::relay

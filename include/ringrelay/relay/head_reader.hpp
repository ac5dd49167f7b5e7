// read_head: waits until a whole message head is in an Inbound and parses it,
// for requests (client side) and responses (upstream side) alike.
//
// Ownership: the Inbound (and its socket) is borrowed and must outlive the await; the
// parsed head's views point into in.peek() (the socket's buffers or the carry) and
// are valid until the caller consumes those bytes. Shard thread only.
//
// Errors: nothing thrown; the outcome says how reading ended (parse_error with the
// http::Error, timeout at the deadline, closed on EOF, failed with -errno).
#pragma once

#include <cerrno>

#include "ringrelay/relay/head_scan.hpp"
#include "ringrelay/relay/inbound.hpp"
#include "ringrelay/http.hpp"
#include "ringrelay/io/task.hpp"

namespace rr::relay {

enum class HeadOutcome { complete, parse_error, timeout, closed, failed };

struct HeadRead {
    HeadOutcome outcome;
    http::Error error = http::Error::none;
    bool got_bytes = false;  // some bytes of this head had arrived
    int io_error = 0;        // -errno for failed
};

// parse(std::string_view) -> http::ParseResult fills the caller's head. On
// complete, the head's views point into in.peek() until the caller consumes.
// A head that arrives in pieces is joined in the carry (which then always starts at
// the head's first byte) and parsed again only when HeadScan says it may have
// become complete (or an error), so a trickled head costs linear work.
template <class Parse>
io::Task<HeadRead> read_head(Inbound& in, Parse parse, std::uint64_t deadline_ms) {
    bool got = false;
    HeadScan scan;
    for (;;) {
        if (in.has_carry()) in.gather();
        if (!in.empty()) {
            got = true;
            if (scan.should_parse(in.peek())) {
                const http::ParseResult r = parse(in.peek());
                if (r.status == http::ParseStatus::complete) co_return HeadRead{HeadOutcome::complete, {}, true, 0};
                if (r.status == http::ParseStatus::error)
                    co_return HeadRead{HeadOutcome::parse_error, r.error, true, 0};
            }
            in.gather();  // split head: join the pieces, then wait for the rest
        }
        const int state = co_await in.socket().readable(deadline_ms);
        if (state == io::Socket::kData) continue;
        if (state == io::Socket::kEof) co_return HeadRead{HeadOutcome::closed, {}, got, 0};
        if (state == -ETIMEDOUT) co_return HeadRead{HeadOutcome::timeout, {}, got, state};
        co_return HeadRead{HeadOutcome::failed, {}, got, state};
    }
}

}  // namespace rr::relay

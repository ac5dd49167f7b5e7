// Behaviour of rr::http::ChunkedDecoder: split-anywhere decoding, the end of the
// message, and each framing rule and bound.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "http_test_support.hpp"
#include "ringrelay/http.hpp"

using namespace rr::http;
using rr::http::test::ExactBuffer;
using namespace std::string_literals;

namespace {

// What feeding a body produced: the decoded bytes and where/how it ended.
struct Decoded {
    std::string data;
    std::size_t consumed = 0;  // total bytes consumed over all feeds
    bool done = false;
    Error error = Error::none;
    std::size_t done_at = 0;  // bytes consumed when done was first reported
};

// Feeds `body` in pieces ending at the given cut points, as separate exact-size
// reads, checking on the way that every payload span lies inside its read.
Decoded decode_in_pieces(std::string_view body, const std::vector<std::size_t>& cuts,
                         std::uint64_t max_body = UINT64_MAX) {
    ChunkedDecoder dec(max_body);
    Decoded out;
    std::size_t from = 0;
    auto feed_piece = [&](std::size_t to) {
        const ExactBuffer piece(body.substr(from, to - from));
        const auto r = dec.feed(piece.view(), [&](std::string_view span) {
            REQUIRE(span.data() >= piece.data());
            REQUIRE(span.data() + span.size() <= piece.data() + (to - from));
            out.data.append(span);
        });
        REQUIRE(r.consumed <= to - from);
        out.consumed += r.consumed;
        if (r.error != Error::none) {
            out.error = r.error;
            return false;
        }
        if (r.done && !out.done) {
            out.done = true;
            out.done_at = out.consumed;
        }
        from = to;
        return !r.done;
    };
    for (const std::size_t cut : cuts) {
        if (!feed_piece(cut)) return out;
    }
    feed_piece(body.size());
    CHECK(dec.decoded_bytes() == out.data.size());
    return out;
}

Decoded decode_whole(std::string_view body, std::uint64_t max_body = UINT64_MAX) {
    return decode_in_pieces(body, {}, max_body);
}

Error error_of(std::string_view body, std::uint64_t max_body = UINT64_MAX) {
    return decode_whole(body, max_body).error;
}

const std::string kSseBody =
    "1c\r\ndata: {\"choices\":[{\"a\":1}]}\n\r\n"
    "A;name=value;quoted=\"x;y\"\r\n0123456789\r\n"
    "00000010 ; ext\r\nabcdefghijklmnop\r\n"
    "1\r\n\n\r\n"
    "0\r\nX-Usage: 12\r\nServer-Timing: total;dur=3\r\n\r\n";
const std::string kSseData = "data: {\"choices\":[{\"a\":1}]}\n0123456789abcdefghijklmnop\n";

}  // namespace

TEST_CASE("a chunked body fed one byte at a time decodes the same as fed whole") {
    const Decoded whole = decode_whole(kSseBody);
    REQUIRE(whole.error == Error::none);
    REQUIRE(whole.done);
    CHECK(whole.data == kSseData);
    CHECK(whole.done_at == kSseBody.size());
    std::vector<std::size_t> every_byte;
    for (std::size_t i = 1; i < kSseBody.size(); ++i) every_byte.push_back(i);
    const Decoded bytewise = decode_in_pieces(kSseBody, every_byte);
    CHECK(bytewise.error == Error::none);
    CHECK(bytewise.data == whole.data);
    CHECK(bytewise.done);
    CHECK(bytewise.done_at == whole.done_at);
}

TEST_CASE("a chunked body in random splits decodes the same and ends at the same byte") {
    const std::string bodies[] = {
        kSseBody,
        "2a\r\n{\"model\":\"text-embedding-3-small\",\"input\":\r\n9\r\n\"hello\"}\n\r\n0\r\n\r\n",
        "0\r\n\r\n",
        "3\r\nabc\r\n0;last\r\n\r\n",
    };
    std::mt19937 rng(20240622);
    for (const std::string& body : bodies) {
        CAPTURE(body);
        const Decoded whole = decode_whole(body);
        REQUIRE(whole.done);
        for (int round = 0; round < 300; ++round) {
            std::vector<std::size_t> cuts;
            std::uniform_int_distribution<std::size_t> cut(1, body.size() - 1);
            const int pieces = static_cast<int>(rng() % 6);
            for (int i = 0; i < pieces; ++i) cuts.push_back(cut(rng));
            std::sort(cuts.begin(), cuts.end());
            const Decoded split = decode_in_pieces(body, cuts);
            REQUIRE(split.error == Error::none);
            REQUIRE(split.data == whole.data);
            REQUIRE(split.done);
            REQUIRE(split.done_at == whole.done_at);
        }
    }
}

TEST_CASE("feed stops at the end of the message and leaves pipelined bytes") {
    const std::string next = "HTTP/1.1 200 OK\r\n";
    const std::string bytes = "5\r\nhello\r\n0\r\n\r\n" + next;
    ChunkedDecoder dec;
    std::string data;
    const auto r = dec.feed(bytes, [&](std::string_view s) { data.append(s); });
    CHECK(r.done);
    CHECK(r.error == Error::none);
    CHECK(r.consumed == bytes.size() - next.size());
    CHECK(data == "hello");
    CHECK(dec.done());
    // Once done, nothing more belongs to this body.
    const auto again = dec.feed(next, [&](std::string_view s) { data.append(s); });
    CHECK(again.consumed == 0);
    CHECK(again.done);
    dec.reset();
    CHECK_FALSE(dec.done());
    CHECK(dec.decoded_bytes() == 0);
}

TEST_CASE("chunk sizes up to 16 hex digits are accepted, a 17th digit is bad_chunk") {
    ChunkedDecoder dec;
    const auto r = dec.feed("FFFFFFFFFFFFFFFF\r\nabc", [](std::string_view) {});
    CHECK(r.error == Error::none);
    CHECK(r.consumed == 21);
    CHECK(decode_whole("000000000000000a\r\n0123456789\r\n0\r\n\r\n").data == "0123456789");
    CHECK(error_of("00000000000000000a\r\n0123456789\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("10000000000000000\r\n") == Error::bad_chunk);
    CHECK(decode_whole("aB\r\n" + std::string(0xab, 'x') + "\r\n0\r\n\r\n").data.size() == 0xab);
}

TEST_CASE("a chunk size that is not hex is bad_chunk") {
    for (const char* body : {"\r\n", ";x\r\n", "g\r\n", "-1\r\n", "+1\r\n", "0x5\r\n", " 5\r\n", "5\n"}) {
        CAPTURE(body);
        CHECK(error_of(body) == Error::bad_chunk);
    }
    CHECK(status_for(Error::bad_chunk) == 400);
}

TEST_CASE("chunk extensions are skipped, with whitespace allowed only before the semicolon") {
    CHECK(decode_whole("3;a=b;c\r\nabc\r\n0;x=\"q\"\r\n\r\n").data == "abc");
    CHECK(decode_whole("3 ;a\r\nabc\r\n0\t; x\r\n\r\n").data == "abc");
    CHECK(error_of("3 \r\nabc\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3 x\r\nabc\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3;a\x01\r\nabc\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3;a\nabc\r\n0\r\n\r\n") == Error::bad_chunk);
}

// The same outcome whichever byte a read ends at: whole, cut once at every point,
// and one byte at a time.
void check_at_every_split(std::string_view body, Error expected) {
    CAPTURE(body);
    CHECK(decode_whole(body).error == expected);
    std::vector<std::size_t> every_byte;
    for (std::size_t cut = 1; cut < body.size(); ++cut) {
        CAPTURE(cut);
        CHECK(decode_in_pieces(body, {cut}).error == expected);
        every_byte.push_back(cut);
    }
    CHECK(decode_in_pieces(body, every_byte).error == expected);
}

TEST_CASE("chunk extensions follow RFC 9112 7.1.1 at every split point") {
    // Well-formed: token names, token or quoted-string values, quoted-pairs, BWS
    // around ';' and '='.
    for (const char* body : {
             "5;a\r\nhello\r\n0\r\n\r\n",
             "5;a=b;c=\"d\"\r\nhello\r\n0\r\n\r\n",
             "5 ; a = b ;c\t=\t\"x y\"\r\nhello\r\n0\r\n\r\n",
             "5;a=\"abc\";b=\"def; ghi\"\r\nhello\r\n0\r\n\r\n",
             "5;q=\"a\\\"b\\\\c\\;\"\r\nhello\r\n0\r\n\r\n",
             "5;a ;b\r\nhello\r\n0;last=\"\"\r\n\r\n",
             "5;n=\"\x80\xff\"\r\nhello\r\n0\r\n\r\n",
         }) {
        check_at_every_split(body, Error::none);
        CHECK(decode_whole(body).data == "hello");
    }
    // Malformed: each reached the upstream verbatim before.
    for (const char* body : {
             "2;\r\naa\r\n0\r\n\r\n",                                // ';' with no name
             "5;a=\"abc\";b=\"def; ghi\r\nhello\r\n0\r\n\r\n",  // quoted string open at the CR
             "2;;a\r\naa\r\n0\r\n\r\n",                              // empty extension
             "2;=b\r\naa\r\n0\r\n\r\n",                              // value with no name
             "2;a=\r\naa\r\n0\r\n\r\n",                              // '=' with no value
             "2;a=b c\r\naa\r\n0\r\n\r\n",                           // two tokens
             "2;a b\r\naa\r\n0\r\n\r\n",                             // a name then a word
             "2;a=\"b\"c\r\naa\r\n0\r\n\r\n",                        // bytes after the quote
             "2;a=b \r\naa\r\n0\r\n\r\n",                            // whitespace before the CRLF
             "2;a \r\naa\r\n0\r\n\r\n",                              // whitespace before the CRLF
             "2;a=b=c\r\naa\r\n0\r\n\r\n",                           // '=' in a token
             "2;a@b\r\naa\r\n0\r\n\r\n",                             // not a token character
             "2;a=\"x\\\r\naa\r\n0\r\n\r\n",                         // quoted-pair of CR
             "2;a=\"x\x7f\"\r\naa\r\n0\r\n\r\n",                     // DEL in a quoted string
             "2;a=\"x\x01\"\r\naa\r\n0\r\n\r\n",                     // a control in a quoted string
             "2\r\naa\r\n0;\r\n\r\n",                                // the last chunk too
         }) {
        check_at_every_split(body, Error::bad_chunk);
    }
}

TEST_CASE("a size line with extensions over 4 KiB is bad_chunk") {
    const auto line_with_ext = [](std::size_t ext_len) {
        return "3;" + std::string(ext_len, 'e') + "\r\nabc\r\n0\r\n\r\n";
    };
    // "3;" + ext + CRLF is the whole size line.
    CHECK(decode_whole(line_with_ext(ChunkedDecoder::kMaxSizeLine - 4)).done);
    CHECK(error_of(line_with_ext(ChunkedDecoder::kMaxSizeLine - 3)) == Error::bad_chunk);
    // Detected while the line is still arriving.
    ChunkedDecoder dec;
    const auto r = dec.feed("3;" + std::string(5000, 'e'), [](std::string_view) {});
    CHECK(r.error == Error::bad_chunk);
    CHECK(r.consumed == ChunkedDecoder::kMaxSizeLine);
}

TEST_CASE("CRLF is required after the size line and after the data") {
    CHECK(error_of("3\rabc\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3\nabc\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3\r\nabcd\r\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3\r\nabc\n0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3\r\nabc\r0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("3\r\nabc0\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("0\r\n\n") == Error::bad_chunk);
    CHECK(error_of("0\r\n\r\r") == Error::bad_chunk);
}

TEST_CASE("trailer fields are accepted with field-line syntax") {
    const Decoded d = decode_whole("3\r\nabc\r\n0\r\nX-Usage: 12\r\nX-Empty:\r\n\r\n");
    CHECK(d.done);
    CHECK(d.data == "abc");
    CHECK(error_of("0\r\nX-Usage: 12\r\n folded\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("0\r\nno colon\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("0\r\n: empty name\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("0\r\nX-A : b\r\n\r\n") == Error::bad_chunk);
    CHECK(error_of("0\r\nX-A: b\0c\r\n\r\n"s) == Error::bad_chunk);
    CHECK(error_of("0\r\nX-A: b\nX-B: c\r\n\r\n") == Error::bad_chunk);
}

TEST_CASE("trailer lines and the trailer section are bounded") {
    const auto trailer = [](std::size_t value_len) { return "X-T: " + std::string(value_len, 'v') + "\r\n"; };
    // One line: "X-T: " + value + CRLF.
    CHECK(decode_whole("0\r\n" + trailer(ChunkedDecoder::kMaxTrailerLine - 7) + "\r\n").done);
    CHECK(error_of("0\r\n" + trailer(ChunkedDecoder::kMaxTrailerLine - 6) + "\r\n") == Error::bad_chunk);
    // Many short lines: the section as a whole (final CRLF included) is bounded.
    const std::string line = trailer(100 - 7);  // 100 bytes
    std::string section;
    while (section.size() + 2 <= ChunkedDecoder::kMaxTrailerBytes - line.size()) section += line;
    const std::size_t room = ChunkedDecoder::kMaxTrailerBytes - section.size() - 2;
    CHECK(decode_whole("0\r\n" + section + trailer(room - 7) + "\r\n").done);
    CHECK(error_of("0\r\n" + section + trailer(room - 6) + "\r\n") == Error::bad_chunk);
}

TEST_CASE("a body over max_body is body_too_large before its data is handed out") {
    const std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    CHECK(decode_whole(body, 11).data == "hello world");
    const Decoded over = decode_whole(body, 10);
    CHECK(over.error == Error::body_too_large);
    CHECK(over.data == "hello");
    CHECK(error_of("FFFFFFFFFFFFFFFF\r\n", UINT64_MAX - 1) == Error::body_too_large);
    CHECK(status_for(Error::body_too_large) == 413);
}

TEST_CASE("a decoder error is sticky") {
    ChunkedDecoder dec;
    const auto first = dec.feed("zz\r\n", [](std::string_view) {});
    CHECK(first.error == Error::bad_chunk);
    CHECK(first.consumed == 0);
    const auto second = dec.feed("3\r\nabc\r\n0\r\n\r\n", [](std::string_view) { FAIL("no data after an error"); });
    CHECK(second.error == Error::bad_chunk);
    CHECK_FALSE(second.done);
    CHECK(dec.feed("", [](std::string_view) {}).error == Error::bad_chunk);
}

// Token usage from a response body in flight. The contract is in
// include/ringrelay/gateway/usage_tap.hpp.
#include "ringrelay/gateway/usage_tap.hpp"

#include <simdjson.h>

#include <cstring>
#include <limits>
#include <utility>

namespace rr::gateway {
namespace {

namespace od = simdjson::ondemand;

constexpr std::string_view kUsageKey = "\"usage\"";
// Room reserved when a usage object starts; larger ones grow the copy (to kMaxUsageObject).
constexpr std::size_t kTypicalUsageObject = 448;
constexpr std::string_view kDataField = "data";

// In Field order.
constexpr std::string_view kFieldNames[] = {
    "prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens",
    "cache_creation_input_tokens", "cache_read_input_tokens",
};

int field_index(std::string_view key) noexcept {
    for (std::size_t i = 0; i < std::size(kFieldNames); ++i) {
        if (key == kFieldNames[i]) return static_cast<int>(i);
    }
    return -1;
}

bool is_json_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_line_end(char c) noexcept { return c == '\n' || c == '\r'; }

// Where the line starting at bytes[i] ends (its CR or LF), or bytes.size().
std::size_t line_end(std::string_view bytes, std::size_t i) noexcept {
    const char* from = bytes.data() + i;
    const char* end = bytes.data() + bytes.size();
    if (const void* lf = std::memchr(from, '\n', static_cast<std::size_t>(end - from))) end = static_cast<const char*>(lf);
    if (const void* cr = std::memchr(from, '\r', static_cast<std::size_t>(end - from))) end = static_cast<const char*>(cr);
    return static_cast<std::size_t>(end - bytes.data());
}

// How many '\' directly precede bytes[i], counting back no further than bytes[0].
std::size_t backslashes_before(std::string_view bytes, std::size_t i) noexcept {
    std::size_t n = 0;
    while (n < i && bytes[i - 1 - n] == '\\') ++n;
    return n;
}

std::uint64_t add_saturating(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t sum = a + b;
    return sum < a ? std::numeric_limits<std::uint64_t>::max() : sum;
}

}  // namespace

void UsageTap::feed(std::string_view bytes) noexcept {
    if (sse_) {
        feed_sse(bytes);
    } else {
        scan(bytes);
    }
}

TokenUsage UsageTap::result() const noexcept {
    TokenUsage u;
    if (fields_.seen == 0) return u;
    const auto& v = fields_.value;
    u.found = true;
    u.prompt_tokens = fields_.has(prompt_tokens)
                          ? v[prompt_tokens]
                          : add_saturating(v[input_tokens], add_saturating(v[cache_creation_input_tokens],
                                                                           v[cache_read_input_tokens]));
    u.completion_tokens = fields_.has(completion_tokens) ? v[completion_tokens] : v[output_tokens];
    u.total_tokens = fields_.has(total_tokens) ? v[total_tokens]
                                               : add_saturating(u.prompt_tokens, u.completion_tokens);
    return u;
}

// --- SSE framing (WHATWG HTML, "Interpreting an event stream") ---

void UsageTap::feed_sse(std::string_view bytes) noexcept {
    std::size_t i = 0;
    while (i < bytes.size()) {
        const char c = bytes[i];
        if (std::exchange(after_cr_, false) && c == '\n') {  // the LF of a CRLF
            ++i;
            continue;
        }
        switch (line_) {
        case Line::start:
            i += start_line(c);
            break;
        case Line::name:
            read_field_name(c);
            ++i;
            break;
        case Line::space:
            line_ = Line::data;
            if (c == ' ') ++i;  // one space after the colon is not part of the value
            break;
        case Line::data:
        case Line::skip:
            i = read_value(bytes, i);
            break;
        }
    }
}

// A line starts with c: a blank line dispatches the event (returns 1, c consumed); else
// a field name begins (returns 0: c is its first byte).
std::size_t UsageTap::start_line(char c) noexcept {
    if (!is_line_end(c)) {
        line_ = Line::name;
        name_len_ = 0;
        name_is_data_ = true;
        return 0;
    }
    end_event();
    end_line(c);
    return 1;
}

void UsageTap::read_field_name(char c) noexcept {
    if (c != ':' && !is_line_end(c)) {
        name_is_data_ = name_is_data_ && name_len_ < kDataField.size() && c == kDataField[name_len_];
        if (name_len_ <= kDataField.size()) ++name_len_;
        return;
    }
    // "data" alone on a line is a data field with an empty value.
    const bool data = name_is_data_ && name_len_ == kDataField.size();
    if (data) begin_data();
    if (c == ':') {
        line_ = data ? Line::space : Line::skip;
    } else {
        end_line(c);
    }
}

// The rest of a field's line: to the scanner for data, dropped otherwise.
std::size_t UsageTap::read_value(std::string_view bytes, std::size_t i) noexcept {
    const std::size_t end = line_end(bytes, i);
    if (line_ == Line::data) scan(bytes.substr(i, end - i));
    if (end < bytes.size()) end_line(bytes[end]);
    return end < bytes.size() ? end + 1 : end;
}

// The data lines of one event are joined with '\n' (JSON whitespace).
void UsageTap::begin_data() noexcept {
    if (event_has_data_) scan("\n");
    event_has_data_ = true;
}

void UsageTap::end_line(char eol) noexcept {
    line_ = Line::start;
    after_cr_ = eol == '\r';
}

// An event ends: a usage object still open in it was cut short.
void UsageTap::end_event() noexcept {
    reset_scan();
    event_has_data_ = false;
}

// --- JSON scanning ---

void UsageTap::scan(std::string_view bytes) noexcept {
    std::size_t i = 0;
    while (i < bytes.size()) {
        switch (scan_) {
        case Scan::seek:
            i = seek(bytes, i);
            break;
        case Scan::colon:
        case Scan::value:
            i = after_key(bytes, i);
            break;
        case Scan::object:
            i = copy_object(bytes, i);
            break;
        }
    }
    // Carry the parity of a trailing run of '\' into the next call's escape checks.
    const std::size_t run = backslashes_before(bytes, bytes.size());
    const bool odd_run = run % 2 == 1;
    odd_backslashes_ = run == bytes.size() ? odd_backslashes_ != odd_run : odd_run;
}

bool UsageTap::quote_is_escaped(std::string_view bytes, std::size_t i) const noexcept {
    const std::size_t run = backslashes_before(bytes, i);
    const bool odd_run = run % 2 == 1;
    return run == i ? odd_run != odd_backslashes_ : odd_run;
}

// Looks for the 7 bytes "usage" whose first quote is not escaped: in valid JSON only a
// string token equal to usage starts that way. It jumps from quote to quote with memchr
// (3 GB/s over an embeddings body, which has few quotes; glibc's memmem measured 1 GB/s
// there). matched_ carries a match cut by the end of the bytes into the next call.
std::size_t UsageTap::seek(std::string_view bytes, std::size_t i) noexcept {
    while (matched_ != 0 && i < bytes.size()) {
        if (bytes[i] != kUsageKey[matched_]) {
            matched_ = 0;  // this byte may still open the next match: search from it
            break;
        }
        ++i;
        if (++matched_ == kUsageKey.size()) return found_key(i);
    }
    while (i < bytes.size()) {
        const void* quote = std::memchr(bytes.data() + i, '"', bytes.size() - i);
        if (quote == nullptr) break;
        const auto at = static_cast<std::size_t>(static_cast<const char*>(quote) - bytes.data());
        const std::string_view rest = bytes.substr(at, kUsageKey.size());
        const bool may_match = rest.size() == 1 || rest[1] == 'u';  // most quotes fail here
        if (may_match && kUsageKey.starts_with(rest) && !quote_is_escaped(bytes, at)) {
            if (rest.size() == kUsageKey.size()) return found_key(at + kUsageKey.size());
            matched_ = static_cast<std::uint8_t>(rest.size());  // the bytes end inside the key
            break;
        }
        i = at + 1;
    }
    return bytes.size();
}

std::size_t UsageTap::found_key(std::size_t next) noexcept {
    matched_ = 0;
    scan_ = Scan::colon;
    return next;
}

// After "usage": a key needs ':' and a usage object '{'. Anything else (a string value
// "usage", the `"usage": null` of OpenAI's stream chunks) sends us back to seeking,
// from this very byte.
std::size_t UsageTap::after_key(std::string_view bytes, std::size_t i) noexcept {
    const char c = bytes[i];
    if (is_json_space(c)) return i + 1;
    if (scan_ == Scan::colon && c == ':') {
        scan_ = Scan::value;
        return i + 1;
    }
    if (scan_ == Scan::value && c == '{') {
        scan_ = Scan::object;
        object_.reserve(kTypicalUsageObject + simdjson::SIMDJSON_PADDING);
        object_.assign(1, '{');
        depth_ = 1;
        in_string_ = false;
        escaped_ = false;
        return i + 1;
    }
    scan_ = Scan::seek;
    return i;
}

// Copies object bytes up to its closing brace, tracking strings so braces inside them
// do not count. An object longer than kMaxUsageObject is dropped and seeking resumes at
// the byte that did not fit.
std::size_t UsageTap::copy_object(std::string_view bytes, std::size_t i) noexcept {
    const std::size_t room = kMaxUsageObject - object_.size();
    const std::size_t end = i + std::min(room, bytes.size() - i);
    // Locals, not members, in the loop: a char load may alias any member.
    bool in_string = in_string_;
    bool escaped = escaped_;
    std::uint32_t depth = depth_;
    std::size_t j = i;
    bool closed = false;
    while (j < end && !closed) {
        const char c = bytes[j++];
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}') {
            closed = --depth == 0;
        }
    }
    in_string_ = in_string;
    escaped_ = escaped;
    depth_ = depth;
    if (!closed && j == end && end < bytes.size()) {  // too large to be a usage object
        drop_object();
        return end;
    }
    object_.append(bytes.substr(i, j - i));
    if (closed) finish_object();
    return j;
}

void UsageTap::finish_object() noexcept {
    Fields found;
    if (parse_usage(object_, found)) {
        for (int f = 0; f < field_count; ++f) {
            if (!found.has(static_cast<Field>(f))) continue;
            fields_.value[f] = found.value[f];
            fields_.seen = static_cast<std::uint8_t>(fields_.seen | (1u << f));
        }
    }
    drop_object();
}

void UsageTap::drop_object() noexcept {
    object_.clear();
    scan_ = Scan::seek;
}

// Reads the known integer fields of one usage object; false if it is not valid JSON
// (then nothing of it counts). simdjson reads up to SIMDJSON_PADDING bytes past the
// end, so `object` gets that much spare capacity. A local parser (about 150 ns more
// than a reused one, measured): this runs once or twice per response.
bool UsageTap::parse_usage(std::string& object, Fields& out) noexcept {
    if (object.capacity() < object.size() + simdjson::SIMDJSON_PADDING) {
        object.reserve(object.size() + simdjson::SIMDJSON_PADDING);
    }
    od::parser parser;
    od::document doc;
    od::object fields;
    if (parser.iterate(object.data(), object.size(), object.capacity()).get(doc) != simdjson::SUCCESS) return false;
    if (doc.get_object().get(fields) != simdjson::SUCCESS) return false;
    for (auto field : fields) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        const int f = field_index(key);
        od::value value;
        od::json_type type;
        if (field.value().get(value) != simdjson::SUCCESS) return false;
        if (value.type().get(type) != simdjson::SUCCESS) return false;
        if (f < 0 || type != od::json_type::number) continue;
        std::uint64_t n = 0;
        if (value.get_uint64().get(n) != simdjson::SUCCESS) continue;  // negative, fraction, too big
        out.value[f] = n;
        out.seen = static_cast<std::uint8_t>(out.seen | (1u << f));
    }
    return true;  // the copy ends at the object's closing brace: nothing follows it
}

void UsageTap::reset_scan() noexcept {
    drop_object();
    matched_ = 0;
    odd_backslashes_ = false;
}

}  // namespace rr::gateway

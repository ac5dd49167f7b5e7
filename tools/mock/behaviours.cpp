#include "behaviours.hpp"

#include <charconv>

namespace rr::mock {
namespace {

bool parse_bounded(std::string_view text, std::uint32_t max, std::uint32_t& out) noexcept {
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || value > max)
        return false;
    out = value;
    return true;
}

bool parse_mode(std::string_view text, Mode& out) noexcept {
    if (http::iequals(text, "hang")) out = Mode::hang;
    else if (http::iequals(text, "reset")) out = Mode::reset;
    else if (http::iequals(text, "close-mid-stream")) out = Mode::close_mid_stream;
    else if (http::iequals(text, "normal") || text.empty()) out = Mode::normal;
    else return false;
    return true;
}

// Applies x-mock-<name>: value to out; an unknown name is ignored.
std::string_view apply(std::string_view name, std::string_view value, Behaviour& out) noexcept {
    if (http::iequals(name, "delay-ms")) {
        if (!parse_bounded(value, kMaxDelayMs, out.delay_ms)) return "bad x-mock-delay-ms";
    } else if (http::iequals(name, "chunks")) {
        if (!parse_bounded(value, kMaxChunks, out.chunks)) return "bad x-mock-chunks";
    } else if (http::iequals(name, "chunk-delay-ms")) {
        if (!parse_bounded(value, kMaxDelayMs, out.chunk_delay_ms)) return "bad x-mock-chunk-delay-ms";
    } else if (http::iequals(name, "first-event-delay-ms")) {
        if (!parse_bounded(value, kMaxDelayMs, out.first_event_delay_ms)) return "bad x-mock-first-event-delay-ms";
    } else if (http::iequals(name, "status")) {
        std::uint32_t status = 0;
        if (!parse_bounded(value, 599, status) || status < 200) return "bad x-mock-status";
        out.status = static_cast<int>(status);
    } else if (http::iequals(name, "behavior") || http::iequals(name, "behaviour")) {
        if (!parse_mode(value, out.mode)) return "bad x-mock-behavior";
    }
    return {};
}

Behaviour& defaults() noexcept {
    static Behaviour d;  // written at start-up only, then read by every loop thread
    return d;
}

}  // namespace

std::string_view read_behaviour(const http::RequestHead& head, Behaviour& out) noexcept {
    out = defaults();
    for (std::size_t i = 0; i < head.header_count; ++i) {
        const http::Header& h = head.headers[i];
        if (h.name.size() < 7 || !http::iequals(h.name.substr(0, 7), "x-mock-")) continue;
        if (const std::string_view bad = apply(h.name.substr(7), h.value, out); !bad.empty()) return bad;
    }
    return {};
}

std::string_view set_default_behaviour(std::string_view name, std::string_view value) noexcept {
    bool known = false;
    for (std::string_view n : {"delay-ms", "chunks", "chunk-delay-ms", "first-event-delay-ms", "status", "behavior",
                               "behaviour"})
        known = known || http::iequals(name, n);
    if (!known) return "unknown behaviour name (delay-ms, chunks, chunk-delay-ms, first-event-delay-ms, status, behavior)";
    Behaviour b = defaults();
    if (const std::string_view bad = apply(name, value, b); !bad.empty()) return bad;
    defaults() = b;
    return {};
}

}  // namespace rr::mock

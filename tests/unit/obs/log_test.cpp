// The start-up logger (include/ringrelay/obs/log.hpp): the level names it shares with
// the access log, and the line it writes for each level.
#include "ringrelay/obs/log.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <unistd.h>

#include <array>
#include <string>
#include <string_view>

using namespace rr::obs;

namespace {

constexpr std::array kLevels{Level::debug, Level::info, Level::warn, Level::error};

// One log() call's line, read back through a pipe.
std::string logged_line(Level level, std::string_view msg) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    configure_log(Level::debug, fds[1]);
    log(level, msg, {{"n", 7}});
    configure_log(Level::info, 2);
    ::close(fds[1]);
    std::string line;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) line.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    return line;
}

}  // namespace

TEST_CASE("every level has its own name, and parse_level reads it back") {
    CHECK(level_name(Level::debug) == "debug");
    CHECK(level_name(Level::info) == "info");
    CHECK(level_name(Level::warn) == "warn");
    CHECK(level_name(Level::error) == "error");
    for (Level level : kLevels) {
        Level parsed = level == Level::info ? Level::debug : Level::info;
        REQUIRE(parse_level(level_name(level), parsed));
        CHECK(parsed == level);
    }
}

TEST_CASE("a log line names its level and carries the message and fields") {
    simdjson::dom::parser parser;
    for (Level level : kLevels) {
        const std::string line = logged_line(level, "hello \"there\"");
        REQUIRE(!line.empty());
        CHECK(line.back() == '\n');
        simdjson::dom::element obj;
        REQUIRE(parser.parse(line).get(obj) == simdjson::SUCCESS);
        std::string_view got;
        REQUIRE(obj["level"].get(got) == simdjson::SUCCESS);
        CHECK(got == level_name(level));
        REQUIRE(obj["msg"].get(got) == simdjson::SUCCESS);
        CHECK(got == "hello \"there\"");
        std::int64_t n = 0;
        REQUIRE(obj["n"].get(n) == simdjson::SUCCESS);
        CHECK(n == 7);
    }
}

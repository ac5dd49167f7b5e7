#include "ringrelay/obs/log.hpp"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

namespace rr::obs {
namespace {
std::atomic<int> g_min_level{static_cast<int>(Level::info)};
std::atomic<int> g_fd{2};

const char* level_name(Level l) {
    switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    }
    return "info";
}
}  // namespace

void configure_log(Level min_level, int fd) noexcept {
    g_min_level.store(static_cast<int>(min_level));
    g_fd.store(fd);
}

bool parse_level(std::string_view text, Level& out) noexcept {
    if (text == "debug") out = Level::debug;
    else if (text == "info") out = Level::info;
    else if (text == "warn" || text == "warning") out = Level::warn;
    else if (text == "error") out = Level::error;
    else return false;
    return true;
}

bool log_enabled(Level level) noexcept { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

void append_json_escaped(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
}

std::string utc_timestamp() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1,
                  t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
    return buf;
}

void log(Level level, std::string_view msg, std::initializer_list<Field> fields) {
    if (!log_enabled(level)) return;
    std::string line = "{\"ts\":\"" + utc_timestamp() + "\",\"level\":\"" + level_name(level) + "\",\"msg\":\"";
    append_json_escaped(line, msg);
    line += '"';
    for (const Field& f : fields) {
        line += ",\"";
        append_json_escaped(line, f.key);
        line += "\":";
        if (f.is_number) {
            char num[32];
            if (std::floor(f.number) == f.number && std::fabs(f.number) < 1e15)
                std::snprintf(num, sizeof num, "%lld", static_cast<long long>(f.number));
            else
                std::snprintf(num, sizeof num, "%.3f", f.number);
            line += num;
        } else {
            line += '"';
            append_json_escaped(line, f.text);
            line += '"';
        }
    }
    line += "}\n";
    [[maybe_unused]] auto n = ::write(g_fd.load(), line.data(), line.size());
}

}  // namespace rr::obs

// Pipes a rendered scrape, with every family populated, through
// `promtool check metrics` (the Prometheus project's own parser and linter).
// Exit 0: promtool accepted it; 1: it did not; 77: no promtool here (meson: skipped).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringrelay/obs/metrics.hpp"

namespace {

std::string find_in_path(std::string_view program) {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!dirs.empty()) {
        const std::size_t colon = dirs.find(':');
        const std::string_view dir = dirs.substr(0, colon);
        dirs.remove_prefix(colon == std::string_view::npos ? dirs.size() : colon + 1);
        if (dir.empty()) continue;
        std::string candidate = std::string(dir) + "/" + std::string(program);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

std::string populated_scrape() {
    using namespace rr::obs;
    constexpr std::uint64_t ms = 1'000'000;
    Metrics m(2, "0.1.0");
    ShardMetrics& a = m.shard(0);
    ShardMetrics& b = m.shard(1);
    a.record_request(200, ErrorCode::none, 12 * ms);
    a.record_request(429, ErrorCode::key_in_use, 1 * ms);
    b.record_request(503, ErrorCode::no_available_channel, 2 * ms);
    b.record_request(502, ErrorCode::upstream_error, 30'000 * ms);
    b.record_request(200, ErrorCode::none, 90'000 * ms);
    a.observe_upstream(a.channel_index("c_openai1"), 11 * ms);
    b.observe_upstream(b.channel_index("odd \"label\\\nvalue"), 70'000 * ms);
    a.observe_queue_wait(0);
    b.observe_queue_wait(250 * ms);
    a.connection_opened();
    a.count_upstream_connection();
    a.count_upstream_request();
    a.set_io_counters(3, 1);
    m.count_key_force_releases();
    m.set_gauge_source([](ScrapeGauges& g) {
        g.upstream_tokens_in_use = 4;
        g.upstream_queue_depth = 2;
        g.keys_in_flight = 3;
        g.access_log_dropped = 1;
        g.channels = {{"c_openai1", true, false}, {"odd \"label\\\nvalue", false, true}};
    });
    return m.render();
}

}  // namespace

int main() {
    const std::string promtool = find_in_path("promtool");
    if (promtool.empty()) {
        std::puts("promtool not found in PATH (Debian package: prometheus): skipped");
        return 77;
    }
    const std::string text = populated_scrape();
    const std::string cmd = "'" + promtool + "' check metrics";
    FILE* pipe = ::popen(cmd.c_str(), "w");
    if (pipe == nullptr) {
        std::perror("popen");
        return 1;
    }
    std::fwrite(text.data(), 1, text.size(), pipe);
    const int status = ::pclose(pipe);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fputs("promtool check metrics rejected this text:\n", stderr);
        std::fputs(text.c_str(), stderr);
        return 1;
    }
    std::puts("promtool check metrics: ok");
    return 0;
}

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ringrelay/server/settings.hpp"

using rr::relay::Mode;
using rr::relay::ServeSettings;

namespace {

struct Args {
    explicit Args(std::vector<std::string> a) : storage(std::move(a)) {
        storage.insert(storage.begin(), "serve");
        for (auto& s : storage) argv.push_back(s.data());
    }
    int argc() { return static_cast<int>(argv.size()); }
    std::vector<std::string> storage;
    std::vector<char*> argv;
};

bool resolve(std::vector<std::string> flags, ServeSettings& out, std::string& error, bool& usage) {
    Args a(std::move(flags));
    return rr::server::resolve_settings(a.argc(), a.argv.data(), out, error, usage);
}

std::string write_config(const std::string& json) {
    char path[] = "/tmp/rr-settings-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE* f = fdopen(fd, "w");
    std::fputs(json.c_str(), f);
    std::fclose(f);
    return path;
}

}  // namespace

TEST_CASE("defaults follow REFERENCE.md") {
    ServeSettings s;
    std::string err;
    bool usage;
    REQUIRE(resolve({}, s, err, usage));
    CHECK(s.mode == Mode::gateway);
    CHECK(s.upstream_max_concurrent == 64);
    CHECK(s.upstream_max_queue == 1024);
    CHECK(s.upstream_queue_timeout_ms == 30000);
    CHECK(s.stream_idle_timeout_ms == 120000);
    CHECK(s.header_timeout_ms == 10000);
    CHECK(s.max_body == 8u << 20);
    CHECK(s.retries == 2);
    CHECK(s.listen == "0.0.0.0:8080");
}

TEST_CASE("a flag beats the environment, which beats the config file") {
    const std::string cfg = write_config(
        R"({"upstream_max_concurrent": 5, "upstream-max-queue": 6, "header-timeout": "3s", "max-body": "1MiB"})");
    setenv("RINGRELAY_UPSTREAM_MAX_QUEUE", "77", 1);
    setenv("RINGRELAY_UPSTREAM_MAX_CONCURRENT", "88", 1);
    ServeSettings s;
    std::string err;
    bool usage;
    REQUIRE(resolve({"--config", cfg, "--upstream-max-concurrent", "9"}, s, err, usage));
    CHECK(s.upstream_max_concurrent == 9);   // flag
    CHECK(s.upstream_max_queue == 77);       // environment over file
    CHECK(s.header_timeout_ms == 3000);      // file
    CHECK(s.max_body == 1u << 20);           // file
    unsetenv("RINGRELAY_UPSTREAM_MAX_QUEUE");
    unsetenv("RINGRELAY_UPSTREAM_MAX_CONCURRENT");
    std::remove(cfg.c_str());
}

TEST_CASE("bad values are usage errors that name the flag") {
    ServeSettings s;
    std::string err;
    bool usage = false;
    CHECK_FALSE(resolve({"--header-timeout", "soon"}, s, err, usage));
    CHECK(usage);
    CHECK(err.find("--header-timeout") != std::string::npos);
    CHECK_FALSE(resolve({"--no-such-flag", "1"}, s, err, usage));
    CHECK(err.find("--no-such-flag") != std::string::npos);
    CHECK_FALSE(resolve({"--mode", "relay"}, s, err, usage));  // relay needs --upstream
    CHECK(err.find("--upstream") != std::string::npos);
    CHECK_FALSE(resolve({"--max-body"}, s, err, usage));
    CHECK_FALSE(resolve({"--retry-non-idempotent", "maybe"}, s, err, usage));
    CHECK(err.find("--retry-non-idempotent") != std::string::npos);
}

TEST_CASE("session sources: the default list, an operator's list, none, and typos refused") {
    ServeSettings s;
    std::string err;
    bool usage = false;
    REQUIRE(resolve({}, s, err, usage));
    REQUIRE(s.session_sources.size() == 4);
    CHECK(s.session_sources[0].kind == rr::relay::SessionSource::prompt_cache_key);
    CHECK(s.session_sources[1].kind == rr::relay::SessionSource::metadata_user_id);
    CHECK(s.session_sources[2].header_name == "session_id");
    REQUIRE(resolve({"--session-from", "header:X-Conversation, prompt_cache_key"}, s, err, usage));
    REQUIRE(s.session_sources.size() == 2);
    CHECK(s.session_sources[0].kind == rr::relay::SessionSource::header);
    CHECK(s.session_sources[0].header_name == "X-Conversation");
    CHECK(s.session_sources[1].kind == rr::relay::SessionSource::prompt_cache_key);
    REQUIRE(resolve({"--session-from", "none"}, s, err, usage));
    CHECK(s.session_sources.empty());
    CHECK_FALSE(resolve({"--session-from", "metadata.userid"}, s, err, usage));
    CHECK(err.find("--session-from") != std::string::npos);
    CHECK(err.find("metadata.userid") != std::string::npos);
    CHECK_FALSE(resolve({"--session-from", "header:bad name"}, s, err, usage));
    CHECK_FALSE(resolve({"--session-from", ""}, s, err, usage));
}

TEST_CASE("wider retries of non-idempotent requests are off unless asked for") {
    ServeSettings s;
    std::string err;
    bool usage = false;
    REQUIRE(resolve({}, s, err, usage));
    CHECK_FALSE(s.retry_non_idempotent);
    REQUIRE(resolve({"--retry-non-idempotent", "true"}, s, err, usage));
    CHECK(s.retry_non_idempotent);
    ServeSettings off;
    REQUIRE(resolve({"--retry-non-idempotent=false"}, off, err, usage));
    CHECK_FALSE(off.retry_non_idempotent);
    const std::string path = write_config("{\"retry_non_idempotent\": true}");
    ServeSettings from_file;
    REQUIRE(resolve({"--config", path}, from_file, err, usage));
    CHECK(from_file.retry_non_idempotent);
    std::remove(path.c_str());
}

TEST_CASE("--first-byte-timeout is off by default and resolves like --upstream-timeout") {
    ServeSettings s;
    std::string err;
    bool usage = false;
    REQUIRE(resolve({}, s, err, usage));
    CHECK(s.first_byte_timeout_ms == 0);  // off: only the upstream timeout applies
    REQUIRE(resolve({"--first-byte-timeout", "300ms"}, s, err, usage));
    CHECK(s.first_byte_timeout_ms == 300);
    REQUIRE(resolve({"--first-byte-timeout=0"}, s, err, usage));
    CHECK(s.first_byte_timeout_ms == 0);

    const std::string cfg = write_config(R"({"first_byte_timeout": "2s"})");
    ServeSettings from_file;
    REQUIRE(resolve({"--config", cfg}, from_file, err, usage));
    CHECK(from_file.first_byte_timeout_ms == 2000);
    setenv("RINGRELAY_FIRST_BYTE_TIMEOUT", "750ms", 1);
    ServeSettings from_env;
    REQUIRE(resolve({"--config", cfg}, from_env, err, usage));
    CHECK(from_env.first_byte_timeout_ms == 750);  // environment over file
    ServeSettings from_flag;
    REQUIRE(resolve({"--config", cfg, "--first-byte-timeout", "1s"}, from_flag, err, usage));
    CHECK(from_flag.first_byte_timeout_ms == 1000);  // flag over both
    unsetenv("RINGRELAY_FIRST_BYTE_TIMEOUT");
    std::remove(cfg.c_str());

    CHECK_FALSE(resolve({"--first-byte-timeout", "soon"}, s, err, usage));
    CHECK(usage);
    CHECK(err.find("--first-byte-timeout") != std::string::npos);
}

TEST_CASE("an unknown key in the config file is an error, not ignored") {
    const std::string cfg = write_config(R"({"upstream-max-concurent": 5})");
    ServeSettings s;
    std::string err;
    bool usage = true;
    CHECK_FALSE(resolve({"--config", cfg}, s, err, usage));
    CHECK_FALSE(usage);
    CHECK(err.find("upstream-max-concurent") != std::string::npos);
    std::remove(cfg.c_str());
}

TEST_CASE("--tls-cert and --tls-key repeat in pairs (flags or config arrays); the first pair is the default") {
    ServeSettings s;
    std::string err;
    bool usage = false;
    REQUIRE(resolve({"--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-cert", "b.pem", "--tls-key", "b.key"}, s,
                    err, usage));
    CHECK(s.tls_certs == std::vector<std::string>{"a.pem", "b.pem"});
    CHECK(s.tls_keys == std::vector<std::string>{"a.key", "b.key"});
    CHECK(s.tls_cert == "a.pem");
    CHECK(s.tls_key == "a.key");

    REQUIRE(resolve({"--tls-cert", "one.pem", "--tls-key", "one.key"}, s, err, usage));
    CHECK(s.tls_certs == std::vector<std::string>{"one.pem"});
    CHECK(s.tls_cert == "one.pem");

    CHECK_FALSE(resolve({"--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-cert", "b.pem"}, s, err, usage));
    CHECK(usage);
    CHECK(err.find("in pairs (2 certificates, 1 keys)") != std::string::npos);
    CHECK_FALSE(resolve({"--tls-cert", "a.pem"}, s, err, usage));
    CHECK(err.find("--tls-key") != std::string::npos);

    const std::string cfg = write_config(R"({"tls-cert": ["x.pem", "y.pem"], "tls_key": ["x.key", "y.key"]})");
    REQUIRE(resolve({"--config", cfg}, s, err, usage));
    CHECK(s.tls_certs == std::vector<std::string>{"x.pem", "y.pem"});
    CHECK(s.tls_keys == std::vector<std::string>{"x.key", "y.key"});
    CHECK(s.tls_cert == "x.pem");
    std::remove(cfg.c_str());
    const std::string bad = write_config(R"({"tls-cert": ["x.pem", 5]})");
    CHECK_FALSE(resolve({"--config", bad}, s, err, usage));
    CHECK(err.find("array of strings") != std::string::npos);
    std::remove(bad.c_str());
}

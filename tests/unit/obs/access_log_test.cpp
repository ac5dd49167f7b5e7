#include "ringrelay/obs/access_log.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

using namespace rr::obs;

namespace {

// A fresh directory under /tmp, removed with its files at the end of the test.
struct TempDir {
    TempDir() {
        char tmpl[] = "/tmp/rr-obs-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        const std::string cmd = "rm -rf '" + path + "'";
        [[maybe_unused]] int rc = std::system(cmd.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
    std::string path;
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The fields REFERENCE.md section 5 requires of a request line: exactly these, no others.
const std::set<std::string> kRequestFields = {
    "ts",      "level",      "msg",        "trace_id", "shard",  "method",   "path",
    "status",  "latency_ms", "queue_ms",   "upstream_ms", "upstream_status", "api_key_id",
    "channel_id", "model",   "stream",     "bytes_in", "bytes_out", "error_code",
    "usage", "prompt_tokens", "completion_tokens"};

std::set<std::string> keys_of(simdjson::dom::object obj) {
    std::set<std::string> keys;
    for (auto field : obj) keys.emplace(field.key);
    return keys;
}

// Parses one line; fails the test when it is not a JSON object.
simdjson::dom::object parse_object(simdjson::dom::parser& parser, const std::string& line) {
    simdjson::dom::object obj;
    const auto err = parser.parse(line).get(obj);
    INFO(line);
    REQUIRE(err == simdjson::SUCCESS);
    return obj;
}

std::string_view str(simdjson::dom::object obj, const char* key) {
    std::string_view v;
    REQUIRE(obj[key].get(v) == simdjson::SUCCESS);
    return v;
}

std::uint64_t uint_of(simdjson::dom::object obj, const char* key) {
    std::uint64_t v = 0;
    REQUIRE(obj[key].get(v) == simdjson::SUCCESS);
    return v;
}

double num(simdjson::dom::object obj, const char* key) {
    double v = 0;
    REQUIRE(obj[key].get(v) == simdjson::SUCCESS);
    return v;
}

bool is_null(simdjson::dom::object obj, const char* key) {
    simdjson::dom::element e;
    return obj[key].get(e) == simdjson::SUCCESS && e.is_null();
}

AccessRecord sample_request() {
    AccessRecord r;
    r.method.assign("POST");
    r.set_path("/v1/chat/completions");
    r.trace_id.assign("req-123");
    r.status = 200;
    r.upstream_status = 200;
    r.latency_ns = 12'345'678;
    r.queue_ns = 1'500'000;
    r.upstream_ns = 10'000'000;
    r.api_key_id.assign("k_abcdefghijkl");
    r.channel_id.assign("c_abcdefghijkl");
    r.model.assign("gpt-4o");
    r.stream = true;
    r.bytes_in = 321;
    r.bytes_out = 4567;
    return r;
}

// Pushes until the ring takes the record (the writer is draining it).
void push_retrying(AccessLogProducer& p, const AccessRecord& r) {
    while (!p.push(r)) std::this_thread::yield();
}

}  // namespace

TEST_CASE("a request record is one JSON line with exactly the REFERENCE.md fields") {
    TempDir dir;
    AccessLog log(2, {.path = dir.file("access.log")});
    std::string error;
    REQUIRE(log.start(error));
    REQUIRE(log.producer(1).push(sample_request()));
    log.stop();

    const auto lines = read_lines(dir.file("access.log"));
    REQUIRE(lines.size() == 1);
    simdjson::dom::parser parser;
    const auto obj = parse_object(parser, lines[0]);
    CHECK(keys_of(obj) == kRequestFields);
    CHECK(str(obj, "level") == "info");
    CHECK(str(obj, "msg") == "request");
    CHECK(str(obj, "trace_id") == "req-123");
    CHECK(uint_of(obj, "shard") == 1);
    CHECK(str(obj, "method") == "POST");
    CHECK(str(obj, "path") == "/v1/chat/completions");
    CHECK(uint_of(obj, "status") == 200);
    CHECK(num(obj, "latency_ms") == doctest::Approx(12.345));
    CHECK(num(obj, "queue_ms") == doctest::Approx(1.5));
    CHECK(num(obj, "upstream_ms") == doctest::Approx(10.0));
    CHECK(uint_of(obj, "upstream_status") == 200);
    CHECK(str(obj, "api_key_id") == "k_abcdefghijkl");
    CHECK(str(obj, "channel_id") == "c_abcdefghijkl");
    CHECK(str(obj, "model") == "gpt-4o");
    bool stream = false;
    REQUIRE(obj["stream"].get(stream) == simdjson::SUCCESS);
    CHECK(stream);
    CHECK(uint_of(obj, "bytes_in") == 321);
    CHECK(uint_of(obj, "bytes_out") == 4567);
    CHECK(is_null(obj, "error_code"));

    const std::string_view ts = str(obj, "ts");  // 2026-11-23T15:20:17.123Z
    CHECK(ts.size() == 24);
    CHECK(ts[10] == 'T');
    CHECK(ts[19] == '.');
    CHECK(ts.back() == 'Z');
}

TEST_CASE("a gateway-made answer logs its code; absent values are null") {
    AccessRecord r;
    r.method.assign("GET");
    r.set_path("/v1/models");
    r.trace_id.assign("t");
    r.status = 429;
    r.error_code = ErrorCode::upstream_queue_full;
    std::string line;
    append_access_line(line, r);
    REQUIRE(line.back() == '\n');
    line.pop_back();

    simdjson::dom::parser parser;
    const auto obj = parse_object(parser, line);
    CHECK(keys_of(obj) == kRequestFields);
    CHECK(str(obj, "error_code") == "upstream_queue_full");
    CHECK(is_null(obj, "upstream_status"));
    CHECK(is_null(obj, "api_key_id"));
    CHECK(is_null(obj, "channel_id"));
    CHECK(is_null(obj, "model"));
    CHECK(uint_of(obj, "status") == 429);
    CHECK(is_null(obj, "usage"));
    CHECK(is_null(obj, "prompt_tokens"));
    CHECK(is_null(obj, "completion_tokens"));
}

TEST_CASE("usage is written as reported, as unknown with no counts, or as null") {
    simdjson::dom::parser parser;
    AccessRecord r;
    r.method.assign("POST");
    r.set_path("/v1/messages");
    r.status = 200;
    r.usage = UsageReport::reported;
    r.prompt_tokens = 1234;
    r.completion_tokens = 0;  // a real zero stays a zero
    std::string line;
    append_access_line(line, r);
    line.pop_back();
    auto obj = parse_object(parser, line);
    CHECK(str(obj, "usage") == "reported");
    CHECK(uint_of(obj, "prompt_tokens") == 1234);
    CHECK(uint_of(obj, "completion_tokens") == 0);

    r.usage = UsageReport::unknown;  // the counts of an unknown usage are never shown
    line.clear();
    append_access_line(line, r);
    line.pop_back();
    obj = parse_object(parser, line);
    CHECK(str(obj, "usage") == "unknown");
    CHECK(is_null(obj, "prompt_tokens"));
    CHECK(is_null(obj, "completion_tokens"));
}

TEST_CASE("client text is escaped into valid JSON, invalid UTF-8 included") {
    AccessRecord r;
    r.method.assign("GET");
    const std::string nasty = std::string("/a\"b\\c\n\td\x01") + "\xff\xfe" + "\xc3\xa9" + "\xe2\x82";
    r.set_path(nasty);
    r.model.assign("m\"}{\"injected\":1");
    r.trace_id.assign("\xf0\x9f\x98\x80ok");
    std::string line;
    append_access_line(line, r);
    line.pop_back();

    simdjson::dom::parser parser;
    const auto obj = parse_object(parser, line);
    CHECK(keys_of(obj) == kRequestFields);  // no field injected
    CHECK(str(obj, "path") == "/a\"b\\c\n\td\x01\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(str(obj, "model") == "m\"}{\"injected\":1");
    CHECK(str(obj, "trace_id") == "\xf0\x9f\x98\x80ok");
}

TEST_CASE("long values are truncated, never inside a UTF-8 character") {
    BoundedText<8> t;
    CHECK(t.assign("12345678"));
    CHECK(t.view() == "12345678");
    CHECK_FALSE(t.assign("1234567\xc3\xa9"));  // é would straddle the limit: cut before it
    CHECK(t.view() == "1234567");
    CHECK_FALSE(t.assign("12345\xe2\x82\xac" "9"));  // € ends exactly at the limit: kept
    CHECK(t.view() == "12345\xe2\x82\xac");

    AccessRecord r;
    r.set_path("/v1/" + std::string(1000, 'x'));
    CHECK(r.path().size() == AccessRecord::kPathMax);
}

TEST_CASE("the query string is not logged unless the caller keeps it") {
    AccessRecord r;
    r.set_path("/v1/chat/completions?key=rr-secretsecret&x=1");
    CHECK(r.path() == "/v1/chat/completions");
    r.set_path("/v1/chat/completions?x=1", true);
    CHECK(r.path() == "/v1/chat/completions?x=1");
}

namespace {
// Everything a client sends with a request, secrets included.
struct FakeRequest {
    std::string method = "POST";
    std::string target = "/v1/chat/completions?api_key=rr-0123456789abcdefghijABCDEFGHIJ0123456789";
    std::string authorization = "Bearer rr-0123456789abcdefghijABCDEFGHIJ0123456789";
    std::string x_api_key = "rr-0123456789abcdefghijABCDEFGHIJ0123456789";
    std::string request_id = "abc";
    std::string body = R"({"model":"gpt-4o","api_key":"rr-0123456789abcdefghijABCDEFGHIJ0123456789"})";
};
constexpr std::string_view kClientSecret = "rr-0123456789abcdefghijABCDEFGHIJ0123456789";

// The record offers no member through which a header, a body or a credential could pass.
template <class R> concept HasAuthorization = requires(R r) { r.authorization; };
template <class R> concept HasApiKey = requires(R r) { r.api_key; };
template <class R> concept HasHeaders = requires(R r) { r.headers; };
template <class R> concept HasBody = requires(R r) { r.body; };
template <class R> concept HasQuery = requires(R r) { r.query; };
template <class R> concept HasSecret = requires(R r) { r.secret; };
static_assert(!HasAuthorization<AccessRecord> && !HasApiKey<AccessRecord> && !HasHeaders<AccessRecord> &&
              !HasBody<AccessRecord> && !HasQuery<AccessRecord> && !HasSecret<AccessRecord>);
}  // namespace

TEST_CASE("a request carrying secrets cannot leak them into the log") {
    const FakeRequest request;
    TempDir dir;
    AccessLog log(1, {.path = dir.file("a.log"), .level = Level::debug});
    std::string error;
    REQUIRE(log.start(error));
    // Fill every field the record has from what the request offers.
    AccessRecord r = sample_request();
    r.method.assign(request.method);
    r.set_path(request.target);
    r.trace_id.assign(request.request_id);
    r.model.assign("gpt-4o");
    REQUIRE(log.producer(0).push(r));
    AccessRecord ev = AccessRecord::event(EventKind::key_acquired);
    ev.api_key_id.assign("k_abcdefghijkl");
    ev.trace_id.assign(request.request_id);
    REQUIRE(log.producer(0).push(ev));
    log.stop();

    const std::string text = read_all(dir.file("a.log"));
    CHECK(text.find("k_abcdefghijkl") != std::string::npos);  // the key's id is logged...
    CHECK(text.find(kClientSecret) == std::string::npos);      // ...its secret never
    CHECK(text.find("Bearer") == std::string::npos);
    CHECK(text.find("api_key=") == std::string::npos);
    CHECK(text.find("/v1/chat/completions") != std::string::npos);
}

TEST_CASE("debug events are written only at debug level") {
    TempDir dir;
    {
        AccessLog log(1, {.path = dir.file("info.log"), .level = Level::info});
        std::string error;
        REQUIRE(log.start(error));
        CHECK_FALSE(log.producer(0).enabled(Level::debug));
        CHECK_FALSE(log.producer(0).push(AccessRecord::event(EventKind::key_acquired)));
        CHECK(log.producer(0).push(sample_request()));
        log.stop();
        CHECK(log.dropped() == 0);  // below the level is not a drop
        CHECK(read_lines(dir.file("info.log")).size() == 1);
    }
    AccessLog log(1, {.path = dir.file("debug.log"), .level = Level::debug});
    std::string error;
    REQUIRE(log.start(error));
    AccessLogProducer& p = log.producer(0);
    REQUIRE(p.enabled(Level::debug));
    AccessRecord acquired = AccessRecord::event(EventKind::key_acquired);
    acquired.trace_id.assign("t1");
    acquired.api_key_id.assign("k_1");
    acquired.count = 1;
    acquired.queue_ns = 2'000'000;
    AccessRecord queued = AccessRecord::event(EventKind::upstream_queue);
    queued.trace_id.assign("t1");
    queued.model.assign("gpt-4o");
    queued.count = 9;
    AccessRecord released = AccessRecord::event(EventKind::key_released);
    released.trace_id.assign("t1");
    released.api_key_id.assign("k_1");
    REQUIRE(p.push(acquired));
    REQUIRE(p.push(queued));
    REQUIRE(p.push(released));
    log.stop();

    const auto lines = read_lines(dir.file("debug.log"));
    REQUIRE(lines.size() == 3);
    simdjson::dom::parser parser;
    auto obj = parse_object(parser, lines[0]);
    CHECK(str(obj, "level") == "debug");
    CHECK(str(obj, "msg") == "key acquired");
    CHECK(str(obj, "api_key_id") == "k_1");
    CHECK(uint_of(obj, "in_flight") == 1);
    CHECK(num(obj, "queue_ms") == doctest::Approx(2.0));
    obj = parse_object(parser, lines[1]);
    CHECK(str(obj, "msg") == "upstream queue");
    CHECK(uint_of(obj, "queue_depth") == 9);
    CHECK(str(obj, "model") == "gpt-4o");
    obj = parse_object(parser, lines[2]);
    CHECK(str(obj, "msg") == "key released");
    CHECK(uint_of(obj, "in_flight") == 0);
    CHECK(str(obj, "trace_id") == "t1");
}

TEST_CASE("a full ring drops the record and counts it, without blocking") {
    TempDir dir;
    // The smallest ring: room for two of the longest lines.
    AccessLog log(1, {.path = dir.file("a.log"), .ring_bytes = 1});
    AccessLogProducer& p = log.producer(0);
    AccessRecord r = sample_request();
    r.ts_unix_ns = 1'700'000'000'000'000'000;
    std::string line;
    append_access_line(line, r);
    const std::size_t ring = std::bit_ceil(2 * kMaxAccessLineBytes);
    const int fits = static_cast<int>(ring / line.size());
    int taken = 0;
    for (int i = 0; i < fits + 10; ++i) taken += p.push(r) ? 1 : 0;  // no writer yet
    CHECK(taken == fits);
    CHECK(p.dropped() == 10);
    CHECK(log.dropped() == 10);
    std::string error;
    REQUIRE(log.start(error));
    log.stop();
    const auto lines = read_lines(dir.file("a.log"));
    CHECK(lines.size() == static_cast<std::size_t>(fits));
    CHECK(lines.back() + "\n" == line);
    CHECK(log.written() == static_cast<std::uint64_t>(fits));
}

TEST_CASE("lines that wrap around the end of the ring come out whole and in order") {
    TempDir dir;
    AccessLog log(1, {.path = dir.file("a.log"), .ring_bytes = 1, .flush_interval_ms = 1});
    std::string error;
    REQUIRE(log.start(error));
    AccessRecord r = sample_request();
    constexpr std::uint64_t kLines = 5000;  // hundreds of trips around an 8 KiB ring
    for (std::uint64_t i = 0; i < kLines; ++i) {
        r.bytes_in = i;
        r.set_path(std::string(1 + i % 37, 'p'));  // lengths vary, so the wrap point moves
        push_retrying(log.producer(0), r);
    }
    log.stop();
    const auto lines = read_lines(dir.file("a.log"));
    REQUIRE(lines.size() == kLines);
    simdjson::dom::parser parser;
    std::size_t bad = 0;
    for (std::uint64_t i = 0; i < kLines; ++i) {
        simdjson::dom::object obj;
        std::uint64_t seq = 0;
        std::string_view path;
        if (parser.parse(lines[i]).get(obj) || obj["bytes_in"].get(seq) || obj["path"].get(path) || seq != i ||
            path.size() != 1 + i % 37)
            ++bad;
    }
    CHECK(bad == 0);
}

TEST_CASE("lines a failed write could not put out are counted as dropped") {
    AccessLog log(1, {.path = "/dev/full"});
    std::string error;
    REQUIRE(log.start(error));
    for (int i = 0; i < 3; ++i) REQUIRE(log.producer(0).push(sample_request()));
    log.flush();
    CHECK(log.dropped() == 3);
    CHECK(log.written() == 0);
    log.stop();
}

TEST_CASE("start fails with a message when the file cannot be opened") {
    AccessLog log(1, {.path = "/nonexistent-dir/x/access.log"});
    std::string error;
    CHECK_FALSE(log.start(error));
    CHECK(error.find("/nonexistent-dir/x/access.log") != std::string::npos);
}

TEST_CASE("reopen after a rename writes to the new file, created 0640") {
    TempDir dir;
    const std::string path = dir.file("access.log");
    AccessLog log(1, {.path = path});
    std::string error;
    REQUIRE(log.start(error));
    AccessRecord before = sample_request();
    before.trace_id.assign("before");
    REQUIRE(log.producer(0).push(before));
    log.flush();
    REQUIRE(std::rename(path.c_str(), dir.file("access.log.1").c_str()) == 0);

    REQUIRE(log.reopen(error));
    AccessRecord after = sample_request();
    after.trace_id.assign("after");
    REQUIRE(log.producer(0).push(after));
    log.flush();

    const auto old_lines = read_lines(dir.file("access.log.1"));
    const auto new_lines = read_lines(path);
    REQUIRE(old_lines.size() == 1);
    REQUIRE(new_lines.size() == 1);
    CHECK(old_lines[0].find("\"before\"") != std::string::npos);
    CHECK(new_lines[0].find("\"after\"") != std::string::npos);

    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    const mode_t mask = umask(0);
    umask(mask);
    CHECK((st.st_mode & 0777) == (0640 & ~mask));
    log.stop();
}

TEST_CASE("reopen fails cleanly and the old file stays in use") {
    TempDir dir;
    const std::string sub = dir.file("sub");
    REQUIRE(mkdir(sub.c_str(), 0755) == 0);
    const std::string path = sub + "/access.log";
    AccessLog log(1, {.path = path});
    std::string error;
    REQUIRE(log.start(error));
    REQUIRE(std::rename(path.c_str(), dir.file("moved.log").c_str()) == 0);
    REQUIRE(rmdir(sub.c_str()) == 0);
    CHECK_FALSE(log.reopen(error));
    CHECK(error.find("access.log") != std::string::npos);
    REQUIRE(log.producer(0).push(sample_request()));
    log.stop();
    CHECK(read_lines(dir.file("moved.log")).size() == 1);
}

TEST_CASE("stop() writes every record queued before it") {
    TempDir dir;
    AccessLog log(3, {.path = dir.file("a.log"), .ring_bytes = std::size_t{4} << 20});
    std::string error;
    REQUIRE(log.start(error));
    for (unsigned p = 0; p < 3; ++p)
        for (int i = 0; i < 2000; ++i) REQUIRE(log.producer(p).push(sample_request()));
    log.stop();
    CHECK(read_lines(dir.file("a.log")).size() == 6000);
    CHECK(log.written() == 6000);
    CHECK(log.dropped() == 0);
}

TEST_CASE("many shards pushing at once: every record written once, in order per shard") {
    constexpr unsigned kShards = 4;
    constexpr std::uint64_t kPerShard = 20'000;
    TempDir dir;
    AccessLog log(kShards, {.path = dir.file("a.log"), .ring_bytes = 64 * 1024});
    std::string error;
    REQUIRE(log.start(error));
    std::vector<std::thread> shards;
    for (unsigned s = 0; s < kShards; ++s) {
        shards.emplace_back([&log, s] {
            AccessLogProducer& p = log.producer(s);
            AccessRecord r = sample_request();
            for (std::uint64_t i = 0; i < kPerShard; ++i) {
                r.bytes_in = i;  // the sequence number
                push_retrying(p, r);
            }
        });
    }
    for (auto& t : shards) t.join();
    log.stop();

    const auto lines = read_lines(dir.file("a.log"));
    REQUIRE(lines.size() == kShards * kPerShard);
    std::vector<std::uint64_t> next(kShards, 0);
    simdjson::dom::parser parser;
    std::size_t bad = 0;
    for (const std::string& line : lines) {
        simdjson::dom::object obj;
        std::uint64_t shard = 0, seq = 0;
        if (parser.parse(line).get(obj) || obj["shard"].get(shard) || obj["bytes_in"].get(seq) || shard >= kShards ||
            seq != next[shard]) {
            ++bad;
            continue;
        }
        ++next[shard];
    }
    CHECK(bad == 0);
    for (unsigned s = 0; s < kShards; ++s) CHECK(next[s] == kPerShard);
}

TEST_CASE("an idle writer sleeps instead of spinning") {
    TempDir dir;
    AccessLog log(2, {.path = dir.file("a.log")});
    std::string error;
    REQUIRE(log.start(error));
    REQUIRE(log.producer(0).push(sample_request()));
    log.flush();
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    getrusage(RUSAGE_SELF, &after);
    const auto cpu_us = [](const rusage& u) {
        return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000L + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
    };
    CHECK(cpu_us(after) - cpu_us(before) < 30'000);  // a spinning writer would burn ~300 ms
    // ...and wakes when a record arrives.
    REQUIRE(log.producer(1).push(sample_request()));
    log.flush();
    CHECK(read_lines(dir.file("a.log")).size() == 2);
    log.stop();
}

TEST_CASE("the largest possible record formats completely and parses") {
    AccessRecord r;
    const std::string controls(1000, '\x01');  // each becomes \u0001: the widest escape
    r.method.assign(controls);
    r.set_path(controls);
    r.trace_id.assign(controls);
    r.api_key_id.assign(controls);
    r.channel_id.assign(controls);
    r.model.assign(controls);
    r.shard = 65535;
    r.status = 65535;
    r.upstream_status = 65535;
    r.latency_ns = r.queue_ns = r.upstream_ns = r.bytes_in = r.bytes_out = UINT64_MAX;
    r.error_code = ErrorCode::version_not_supported;
    r.stream = true;
    r.ts_unix_ns = INT64_MAX;
    std::string line;
    append_access_line(line, r);
    line.pop_back();
    simdjson::dom::parser parser;
    const auto obj = parse_object(parser, line);
    CHECK(keys_of(obj) == kRequestFields);
    CHECK(str(obj, "path").size() == AccessRecord::kPathMax);
    CHECK(uint_of(obj, "bytes_out") == UINT64_MAX);
    CHECK(str(obj, "error_code") == "version_not_supported");
}

TEST_CASE("a push wakes an idle writer every time (no lost wake-up)") {
    TempDir dir;
    AccessLog log(2, {.path = dir.file("a.log"), .flush_interval_ms = 1});
    std::string error;
    REQUIRE(log.start(error));
    constexpr int kRounds = 1000;
    int stuck = 0;
    for (int i = 0; i < kRounds && stuck == 0; ++i) {
        // Pauses from 0 to 2 ms: some pushes land while the writer naps, some just as
        // it decides to sleep until rung, some after.
        const auto pause_until = std::chrono::steady_clock::now() + std::chrono::microseconds(100 * (i % 21));
        while (std::chrono::steady_clock::now() < pause_until) std::this_thread::yield();
        REQUIRE(log.producer(static_cast<unsigned>(i % 2)).push(sample_request()));
        // Wait without flush(), which would ring the writer itself.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (log.written() != static_cast<std::uint64_t>(i) + 1) {
            if (std::chrono::steady_clock::now() > deadline) {
                stuck = i + 1;
                break;
            }
            std::this_thread::yield();
        }
    }
    CHECK(stuck == 0);
    log.stop();
    CHECK(read_lines(dir.file("a.log")).size() == kRounds);
}

TEST_CASE("under steady traffic the shards do not ring the writer per record") {
    TempDir dir;
    AccessLog log(2, {.path = dir.file("a.log")});
    std::string error;
    REQUIRE(log.start(error));
    // 4000 records over ~80 ms: a record every 20 us per shard, far more often than
    // the writer's 5 ms period, as on a busy gateway.
    constexpr int kRecords = 4000;
    for (int i = 0; i < kRecords; ++i) {
        const auto next = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        REQUIRE(log.producer(static_cast<unsigned>(i % 2)).push(sample_request()));
        while (std::chrono::steady_clock::now() < next) {
        }
    }
    const std::uint64_t rings = log.wakeups();
    log.stop();
    CHECK(log.written() == kRecords);
    // A ring per burst start, per urge and per period at most: a writer rung per record
    // would show thousands.
    CHECK(rings < kRecords / 20);
}

TEST_CASE("a ring past half full wakes a napping writer before records are dropped") {
    TempDir dir;
    // A writer that would nap ten seconds: only the half-full ring can wake it sooner.
    // Each round pushes until a producer rings (the ring passed half full, so nothing
    // was dropped yet), then sees the writer drain it all well inside the nap. Paced
    // by what the writer does, not by a clock: a writer that is slow to get a CPU on a
    // busy machine does not make records drop here (a fixed-rate producer did).
    AccessLog log(1, {.path = dir.file("a.log"), .ring_bytes = 32 * 1024, .flush_interval_ms = 10'000});
    std::string error;
    REQUIRE(log.start(error));
    REQUIRE(log.producer(0).push(sample_request()));
    const auto written_by = [&](std::uint64_t n, std::chrono::steady_clock::time_point deadline) {
        while (log.written() != n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        return log.written() == n;
    };
    REQUIRE(written_by(1, std::chrono::steady_clock::now() + std::chrono::seconds(5)));  // now it naps
    std::uint64_t pushed = 1;
    for (int round = 0; round < 3; ++round) {
        const std::uint64_t rings = log.wakeups();
        const std::uint64_t before = pushed;
        // A 32 KiB ring holds fewer than 200 lines: it passes half full on the way.
        while (log.wakeups() == rings && pushed - before < 200) {
            REQUIRE(log.producer(0).push(sample_request()));
            ++pushed;
        }
        CAPTURE(round);
        REQUIRE(log.wakeups() == rings + 1);
        CHECK(pushed - before > 4);  // it took lines to get there, not the first one
        // Well before the ten-second nap would end.
        CHECK(written_by(pushed, std::chrono::steady_clock::now() + std::chrono::seconds(5)));
    }
    log.stop();
    CHECK(log.dropped() == 0);
    CHECK(log.written() == pushed);
}

TEST_CASE("escaping: any mix of plain, special and non-ASCII bytes at any offset reads back") {
    // Pieces and what JSON must read back for each: the escaper tests 8 bytes at a time,
    // so specials must be found wherever they sit in a word.
    const std::vector<std::pair<std::string, std::string>> pieces = {
        {"a", "a"},           {"Z9", "Z9"},         {"\"", "\""},           {"\\", "\\"},
        {"\n", "\n"},         {"\x01", "\x01"},     {"\x1f", "\x1f"},       {"\x7f", "\x7f"},
        {" ", " "},           {"\xc3\xa9", "\xc3\xa9"},                     {"\xe2\x82\xac", "\xe2\x82\xac"},
        {"\xff", "\xef\xbf\xbd"}, {"\xc3", "\xef\xbf\xbd"}, {"abcdefgh", "abcdefgh"}};
    std::mt19937 rng(11);
    simdjson::dom::parser parser;
    std::size_t bad = 0;
    for (int round = 0; round < 5000; ++round) {
        std::string in, expect;
        const int n = static_cast<int>(rng() % 24);
        for (int i = 0; i < n; ++i) {
            const auto& [raw, read_back] = pieces[rng() % pieces.size()];
            // A lone lead byte is only invalid when what follows is not a continuation.
            if (raw == "\xc3" && i + 1 < n) continue;
            in += raw;
            expect += read_back;
        }
        char buf[24 * 3 * kJsonEscapedMaxGrowth + 2];
        char* end = write_json_escaped(buf + 1, in);
        buf[0] = '"';
        *end++ = '"';
        const std::string doc(buf, end);
        std::string_view got;
        if (parser.parse(doc).get(got) || got != expect) ++bad;
    }
    CHECK(bad == 0);
}

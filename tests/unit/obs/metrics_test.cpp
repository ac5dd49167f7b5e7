#include "ringrelay/obs/metrics.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "exposition.hpp"

using namespace rr::obs;
using rr::obs::test::Exposition;
using rr::obs::test::Labels;
using rr::obs::test::parse_exposition;

namespace {

constexpr std::uint64_t ms(std::uint64_t n) { return n * 1'000'000; }

Exposition scrape(const Metrics& m) {
    Exposition e = parse_exposition(m.render());
    for (const std::string& err : e.errors) FAIL_CHECK(err);
    for (const std::string& p : check_histograms(e)) FAIL_CHECK(p);
    return e;
}

double requests(const Exposition& e, std::string_view code, std::string_view status) {
    return e.value("ringrelay_requests_total", {{"code", std::string(code)}, {"status", std::string(status)}});
}

}  // namespace

TEST_CASE("requests recorded on different shards are summed at scrape") {
    Metrics m(3, "1.2.3");
    for (unsigned shard = 0; shard < 3; ++shard)
        for (unsigned i = 0; i <= shard; ++i) m.shard(shard).record_request(200, ErrorCode::none, ms(3));
    m.shard(2).record_request(502, ErrorCode::none, ms(3));

    const Exposition e = scrape(m);
    CHECK(requests(e, "none", "200") == 6);
    CHECK(requests(e, "none", "502") == 1);
    CHECK(e.value("ringrelay_shard_requests_total", {{"shard", "0"}}) == 1);
    CHECK(e.value("ringrelay_shard_requests_total", {{"shard", "1"}}) == 2);
    CHECK(e.value("ringrelay_shard_requests_total", {{"shard", "2"}}) == 4);
    CHECK(e.value("ringrelay_request_duration_seconds_count") == 7);
    CHECK(e.value("ringrelay_build_info", {{"version", "1.2.3"}}) == 1);
}

TEST_CASE("a gateway-made response counts under its code; only answers without an upstream are rejections") {
    Metrics m(2, "v");
    m.shard(0).record_request(429, ErrorCode::key_in_use, ms(1));
    m.shard(1).record_request(429, ErrorCode::key_in_use, ms(1));
    m.shard(1).record_request(401, ErrorCode::invalid_api_key, ms(1));
    m.shard(0).record_request(502, ErrorCode::upstream_error, ms(1));
    m.shard(0).record_request(429, ErrorCode::none, ms(1));  // the upstream's own 429

    const Exposition e = scrape(m);
    CHECK(requests(e, "key_in_use", "429") == 2);
    CHECK(requests(e, "invalid_api_key", "401") == 1);
    CHECK(requests(e, "upstream_error", "502") == 1);
    CHECK(requests(e, "none", "429") == 1);
    CHECK(e.value("ringrelay_rejected_total", {{"code", "key_in_use"}}) == 2);
    CHECK(e.value("ringrelay_rejected_total", {{"code", "invalid_api_key"}}) == 1);
    CHECK(e.value("ringrelay_rejected_total", {{"code", "queue_timeout"}}) == 0);  // present at 0
    CHECK(e.value("ringrelay_rejected_total", {{"code", "upstream_error"}}) == -1);
    CHECK(e.value("ringrelay_rejected_total", {{"code", "none"}}) == -1);
}

TEST_CASE("error code names round-trip and unknown names map to other") {
    for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
        const auto code = static_cast<ErrorCode>(i);
        CHECK(error_code_from_name(error_code_name(code)) == code);
    }
    CHECK(error_code_from_name("") == ErrorCode::none);
    CHECK(error_code_from_name("no_such_code") == ErrorCode::other);
    CHECK(error_code_name(ErrorCode::upstream_queue_full) == "upstream_queue_full");
}

TEST_CASE("a value on a bucket bound falls in that bucket (le is inclusive)") {
    CHECK(DurationHistogram::bucket_for(0) == 0);
    CHECK(DurationHistogram::bucket_for(ms(1)) == 0);
    CHECK(DurationHistogram::bucket_for(ms(1) + 1) == 1);
    CHECK(DurationHistogram::bucket_for(ms(100)) == 6);
    CHECK(DurationHistogram::bucket_for(ms(60'000)) == kDurationBucketCount - 1);
    CHECK(DurationHistogram::bucket_for(ms(60'000) + 1) == kDurationBucketCount);
    for (std::size_t i = 0; i < kDurationBucketCount; ++i) {
        CHECK(DurationHistogram::bucket_for(kDurationBucketsNs[i]) == i);
        CHECK(DurationHistogram::bucket_for(kDurationBucketsNs[i] + 1) == i + 1);
    }
}

TEST_CASE("histogram buckets render cumulative with +Inf, _sum in seconds and _count") {
    Metrics m(2, "v");
    m.shard(0).record_request(200, ErrorCode::none, ms(1));        // le 0.001
    m.shard(1).record_request(200, ErrorCode::none, ms(3));        // le 0.005
    m.shard(1).record_request(200, ErrorCode::none, ms(3));        // le 0.005
    m.shard(0).record_request(200, ErrorCode::none, ms(700));      // le 1
    m.shard(0).record_request(200, ErrorCode::none, ms(90'000));   // above 60: only +Inf

    const Exposition e = scrape(m);
    const auto bucket = [&](const char* le) { return e.value("ringrelay_request_duration_seconds_bucket", {{"le", le}}); };
    CHECK(bucket("0.001") == 1);
    CHECK(bucket("0.0025") == 1);
    CHECK(bucket("0.005") == 3);
    CHECK(bucket("0.5") == 3);
    CHECK(bucket("1") == 4);
    CHECK(bucket("60") == 4);
    CHECK(bucket("+Inf") == 5);
    CHECK(e.value("ringrelay_request_duration_seconds_count") == 5);
    CHECK(e.value("ringrelay_request_duration_seconds_sum") == doctest::Approx(90.707));
}

TEST_CASE("queue wait and upstream durations are histograms of their own") {
    Metrics m(2, "v");
    const ChannelIndex a = m.shard(0).channel_index("c_aaa");
    CHECK(m.shard(1).channel_index("c_aaa") == a);  // one registry behind the shard caches
    const ChannelIndex b = m.shard(1).channel_index("c_bbb");
    CHECK(b != a);
    m.shard(0).observe_upstream(a, ms(20));
    m.shard(1).observe_upstream(a, ms(20));
    m.shard(1).observe_upstream(b, ms(2'000));
    m.shard(0).observe_queue_wait(0);
    m.shard(1).observe_queue_wait(ms(40));

    const Exposition e = scrape(m);
    CHECK(e.value("ringrelay_upstream_duration_seconds_count", {{"channel", "c_aaa"}}) == 2);
    CHECK(e.value("ringrelay_upstream_duration_seconds_bucket", {{"channel", "c_aaa"}, {"le", "0.025"}}) == 2);
    CHECK(e.value("ringrelay_upstream_duration_seconds_bucket", {{"channel", "c_aaa"}, {"le", "0.01"}}) == 0);
    CHECK(e.value("ringrelay_upstream_duration_seconds_count", {{"channel", "c_bbb"}}) == 1);
    CHECK(e.value("ringrelay_upstream_duration_seconds_bucket", {{"channel", "c_bbb"}, {"le", "1"}}) == 0);
    CHECK(e.value("ringrelay_upstream_duration_seconds_bucket", {{"channel", "c_bbb"}, {"le", "2.5"}}) == 1);
    CHECK(e.value("ringrelay_queue_wait_seconds_count") == 2);
    CHECK(e.value("ringrelay_queue_wait_seconds_bucket", {{"le", "0.001"}}) == 1);
    CHECK(e.value("ringrelay_queue_wait_seconds_bucket", {{"le", "0.05"}}) == 2);
    CHECK(e.value("ringrelay_request_duration_seconds_count") == 0);
}

TEST_CASE("channel labels past the registry's capacity share the series \"other\"") {
    Metrics m(1, "v");
    for (ChannelIndex i = 0; i < kMaxChannels; ++i) REQUIRE(m.register_channel("c_" + std::to_string(i)) == i);
    CHECK(m.register_channel("c_0") == 0);
    CHECK(m.register_channel("one_too_many") == kMaxChannels);
    m.shard(0).observe_upstream(m.shard(0).channel_index("one_too_many"), ms(5));
    m.shard(0).observe_upstream(kMaxChannels + 100, ms(5));

    const Exposition e = scrape(m);
    CHECK(e.value("ringrelay_upstream_duration_seconds_count", {{"channel", "other"}}) == 2);
    CHECK(e.value("ringrelay_upstream_duration_seconds_count", {{"channel", "c_4095"}}) == 0);
}

TEST_CASE("label values are escaped and read back unchanged") {
    Metrics m(1, "v\"1\\\n");
    const std::string odd = "we\"ird\\name\nx";
    m.shard(0).observe_upstream(m.shard(0).channel_index(odd), ms(1));
    m.set_gauge_source([&](ScrapeGauges& g) { g.channels.push_back({odd, true, false}); });

    const std::string text = m.render();
    CHECK(text.find("channel=\"we\\\"ird\\\\name\\nx\"") != std::string::npos);
    const Exposition e = scrape(m);
    CHECK(e.value("ringrelay_upstream_duration_seconds_count", {{"channel", odd}}) == 1);
    CHECK(e.value("ringrelay_channel_up", {{"channel", odd}}) == 1);
    CHECK(e.value("ringrelay_build_info", {{"version", "v\"1\\\n"}}) == 1);
}

TEST_CASE("global gauges come from the registered source at each scrape") {
    Metrics m(1, "v");
    CHECK(scrape(m).value("ringrelay_upstream_tokens_in_use") == 0);  // no source yet
    int scrapes = 0;
    m.set_gauge_source([&](ScrapeGauges& g) {
        ++scrapes;
        g.upstream_tokens_in_use = 7;
        g.upstream_queue_depth = 3;
        g.keys_in_flight = 5;
        g.access_log_dropped = 11;
        g.channels = {{"c_up", true, false}, {"c_tripped", true, true}, {"c_off", false, false}};
    });
    const Exposition e = scrape(m);
    CHECK(scrapes == 1);
    CHECK(e.value("ringrelay_upstream_tokens_in_use") == 7);
    CHECK(e.value("ringrelay_upstream_queue_depth") == 3);
    CHECK(e.value("ringrelay_keys_in_flight") == 5);
    CHECK(e.value("ringrelay_access_log_dropped_total") == 11);
    CHECK(e.value("ringrelay_channel_up", {{"channel", "c_up"}}) == 1);
    CHECK(e.value("ringrelay_channel_up", {{"channel", "c_off"}}) == 0);
    CHECK(e.value("ringrelay_circuit_open", {{"channel", "c_tripped"}}) == 1);
    CHECK(e.value("ringrelay_circuit_open", {{"channel", "c_up"}}) == 0);
}

TEST_CASE("shard gauges and counters: connections, upstream reuse, io counters, force releases") {
    Metrics m(2, "v");
    m.shard(0).connection_opened();
    m.shard(0).connection_opened();
    m.shard(1).connection_opened();
    m.shard(0).connection_closed();
    for (int i = 0; i < 10; ++i) m.shard(1).count_upstream_request();
    m.shard(1).count_upstream_connection();
    m.shard(0).set_io_counters(4, 1);
    m.shard(1).set_io_counters(2, 0);
    m.shard(1).set_io_counters(3, 0);  // running totals: the latest value counts
    m.shard(0).set_recv_buffer_counters(5, 600);
    m.shard(1).set_recv_buffer_counters(1, 30);
    m.count_key_force_releases(2);

    const Exposition e = scrape(m);
    CHECK(e.value("ringrelay_connections_active") == 2);
    CHECK(e.value("ringrelay_upstream_requests_total") == 10);
    CHECK(e.value("ringrelay_upstream_connections_total") == 1);
    CHECK(e.value("ringrelay_enobufs_total") == 7);
    CHECK(e.value("ringrelay_cq_overflows_total") == 1);
    CHECK(e.value("ringrelay_recv_spills_total") == 6);
    CHECK(e.value("ringrelay_recv_buffers_in_use") == 630);
    CHECK(e.value("ringrelay_key_force_releases_total") == 2);

    const ShardTotals t = m.shard(0).totals();
    CHECK(t.connections_active == 1);
    CHECK(t.enobufs == 4);
    CHECK(m.shard(1).totals().upstream_requests == 10);
}

TEST_CASE("upstream replays are summed over shards per reason, every reason present from the start") {
    Metrics m(2, "v");
    Exposition e = scrape(m);
    for (std::size_t r = 0; r < kReplayReasonCount; ++r) {
        const std::string reason(replay_reason_name(static_cast<ReplayReason>(r)));
        INFO(reason);
        CHECK(e.value("ringrelay_upstream_replays_total", {{"reason", reason}}) == 0);
    }
    m.shard(0).count_upstream_replay(ReplayReason::connect_failed);
    m.shard(1).count_upstream_replay(ReplayReason::connect_failed);
    m.shard(1).count_upstream_replay(ReplayReason::upstream_refused);
    e = scrape(m);
    CHECK(e.value("ringrelay_upstream_replays_total", {{"reason", "connect_failed"}}) == 2);
    CHECK(e.value("ringrelay_upstream_replays_total", {{"reason", "upstream_refused"}}) == 1);
    CHECK(e.value("ringrelay_upstream_replays_total", {{"reason", "no_response"}}) == 0);
}

TEST_CASE("first-byte timeouts are counted per channel, summed over shards, 0 for a channel seen without any") {
    Metrics m(2, "v");
    const ChannelIndex a = m.shard(0).channel_index("ch-a");
    const ChannelIndex b = m.shard(1).channel_index("ch-b");
    m.shard(0).observe_upstream(b, 1'000'000);  // b is known, with no timeout
    m.shard(0).count_first_byte_timeout(a);
    m.shard(1).count_first_byte_timeout(m.shard(1).channel_index("ch-a"));
    m.shard(1).count_first_byte_timeout(kMaxChannels + 7);  // past the registry: "other"
    const Exposition e = scrape(m);
    CHECK(e.value("ringrelay_upstream_first_byte_timeouts_total", {{"channel", "ch-a"}}) == 2);
    CHECK(e.value("ringrelay_upstream_first_byte_timeouts_total", {{"channel", "ch-b"}}) == 0);
    CHECK(e.value("ringrelay_upstream_first_byte_timeouts_total", {{"channel", "other"}}) == 1);
    CHECK(e.value("ringrelay_upstream_replays_total", {{"reason", "first_byte_timeout"}}) == 0);
}

TEST_CASE("every family of REFERENCE.md section 5 is declared with HELP and TYPE") {
    Metrics m(1, "v");
    const Exposition e = scrape(m);
    const std::vector<std::pair<std::string, std::string>> families = {
        {"ringrelay_requests_total", "counter"},
        {"ringrelay_request_duration_seconds", "histogram"},
        {"ringrelay_upstream_duration_seconds", "histogram"},
        {"ringrelay_upstream_tokens_in_use", "gauge"},
        {"ringrelay_upstream_queue_depth", "gauge"},
        {"ringrelay_queue_wait_seconds", "histogram"},
        {"ringrelay_rejected_total", "counter"},
        {"ringrelay_keys_in_flight", "gauge"},
        {"ringrelay_connections_active", "gauge"},
        {"ringrelay_channel_up", "gauge"},
        {"ringrelay_circuit_open", "gauge"},
        {"ringrelay_key_force_releases_total", "counter"},
        {"ringrelay_access_log_dropped_total", "counter"},
        {"ringrelay_upstream_connections_total", "counter"},
        {"ringrelay_upstream_requests_total", "counter"},
        {"ringrelay_upstream_replays_total", "counter"},
        {"ringrelay_upstream_first_byte_timeouts_total", "counter"},
        {"ringrelay_enobufs_total", "counter"},
        {"ringrelay_cq_overflows_total", "counter"},
        {"ringrelay_recv_spills_total", "counter"},
        {"ringrelay_recv_buffers_in_use", "gauge"},
        {"ringrelay_build_info", "gauge"},
    };
    for (const auto& [name, type] : families) {
        INFO(name);
        CHECK(e.helps.count(name) == 1);
        auto it = e.types.find(name);
        REQUIRE(it != e.types.end());
        CHECK(it->second == type);
    }
}

TEST_CASE("more distinct (code, status) pairs than the table holds still count, under status other") {
    Metrics m(1, "v");
    std::uint64_t recorded = 0;
    for (int status = 100; status < 600; ++status) {
        m.shard(0).record_request(status, ErrorCode::none, ms(1));
        ++recorded;
    }
    m.shard(0).record_request(200, ErrorCode::none, ms(1));  // an early pair keeps its own series
    ++recorded;

    const Exposition e = scrape(m);
    double total = 0;
    for (const auto& s : e.samples)
        if (s.name == "ringrelay_requests_total") total += s.value;
    CHECK(total == recorded);
    CHECK(requests(e, "none", "200") == 2);
    CHECK(requests(e, "none", "other") > 0);
}

TEST_CASE("shards recording while another thread scrapes: values only grow and end exact") {
    constexpr unsigned kShards = 4;
    constexpr int kPerShard = 20'000;
    Metrics m(kShards, "v");
    std::atomic<bool> done{false};
    std::vector<std::thread> shards;
    for (unsigned s = 0; s < kShards; ++s) {
        shards.emplace_back([&m, s] {
            ShardMetrics& sm = m.shard(s);
            const ChannelIndex ch = sm.channel_index(s % 2 ? "c_odd" : "c_even");
            for (int i = 0; i < kPerShard; ++i) {
                sm.connection_opened();
                sm.record_request(i % 10 == 0 ? 429 : 200, i % 10 == 0 ? ErrorCode::key_in_use : ErrorCode::none,
                                  static_cast<std::uint64_t>(i) * 1000);
                sm.observe_upstream(ch, 5'000'000);
                sm.connection_closed();
            }
        });
    }
    double last = 0;
    int renders = 0;
    std::thread scraper([&] {
        for (; !done.load() || renders < 5; ++renders) {
            const Exposition e = parse_exposition(m.render());
            CHECK(e.errors.empty());
            CHECK(check_histograms(e).empty());
            const double now = e.value("ringrelay_request_duration_seconds_count");
            CHECK(now >= last);
            last = now;
        }
    });
    for (auto& t : shards) t.join();
    done.store(true);
    scraper.join();
    CHECK(renders >= 5);

    const Exposition e = scrape(m);
    CHECK(e.value("ringrelay_request_duration_seconds_count") == kShards * kPerShard);
    CHECK(requests(e, "none", "200") == kShards * kPerShard * 9 / 10);
    CHECK(requests(e, "key_in_use", "429") == kShards * kPerShard / 10);
    CHECK(e.value("ringrelay_upstream_duration_seconds_count", {{"channel", "c_odd"}}) == kShards / 2 * kPerShard);
    CHECK(e.value("ringrelay_connections_active") == 0);
}

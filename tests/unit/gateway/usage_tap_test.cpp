// Token usage read from response bodies in flight: the formats of OpenAI and Anthropic,
// JSON and SSE, and the contract in include/ringrelay/gateway/usage_tap.hpp.
#include "ringrelay/gateway/usage_tap.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace rr::gateway {
namespace {

constexpr bool kJson = false;
constexpr bool kSse = true;

TokenUsage feed_whole(bool sse, std::string_view body) {
    UsageTap tap(sse);
    tap.feed(body);
    return tap.result();
}

TokenUsage feed_bytewise(bool sse, std::string_view body) {
    UsageTap tap(sse);
    for (char c : body) tap.feed(std::string_view(&c, 1));
    return tap.result();
}

TokenUsage feed_random_splits(bool sse, std::string_view body, std::uint64_t seed, std::size_t max_piece) {
    std::mt19937_64 rng(seed);
    UsageTap tap(sse);
    std::size_t at = 0;
    while (at < body.size()) {
        const std::size_t n = std::min<std::size_t>(body.size() - at, rng() % (max_piece + 1));
        tap.feed(body.substr(at, n));  // empty pieces included
        at += n;
    }
    return tap.result();
}

void check_same(const TokenUsage& got, const TokenUsage& want) {
    CHECK(got.found == want.found);
    CHECK(got.prompt_tokens == want.prompt_tokens);
    CHECK(got.completion_tokens == want.completion_tokens);
    CHECK(got.total_tokens == want.total_tokens);
}

// Whole, byte by byte, and at random splits: the same answer every time.
void check_usage(bool sse, std::string_view body, const TokenUsage& want) {
    {
        INFO("fed whole");
        check_same(feed_whole(sse, body), want);
    }
    {
        INFO("fed byte by byte");
        check_same(feed_bytewise(sse, body), want);
    }
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        INFO("fed at random splits, seed " << seed);
        check_same(feed_random_splits(sse, body, seed, seed % 2 == 0 ? 7 : 300), want);
    }
}

TokenUsage usage(std::uint64_t prompt, std::uint64_t completion, std::uint64_t total) {
    return {true, prompt, completion, total};
}
const TokenUsage kNone{};

// --- OpenAI JSON ---

TEST_CASE("OpenAI chat completion JSON: usage at the top level") {
    const std::string body = R"({
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant",
      "content": "The word \"usage\": {\"prompt_tokens\": 999} is only text here.", "refusal": null},
      "logprobs": null, "finish_reason": "stop"}],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default"
})";
    check_usage(kJson, body, usage(19, 10, 29));
}

TEST_CASE("OpenAI embeddings JSON: prompt and total tokens only") {
    const std::string body =
        R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],)"
        R"("model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})";
    check_usage(kJson, body, usage(8, 0, 8));
}

TEST_CASE("OpenAI responses JSON: input, output and total tokens") {
    const std::string body = R"({"id":"resp_67cc","object":"response","status":"completed",
"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant",
"content":[{"type":"output_text","text":"In a peaceful grove...","annotations":[]}]}],
"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,
"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123},"user":null,"metadata":{}})";
    check_usage(kJson, body, usage(36, 87, 123));
}

// --- Anthropic JSON ---

TEST_CASE("Anthropic message JSON: cache tokens count on the prompt side") {
    const std::string body = R"({"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant",
"model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi! My name is Claude."}],
"stop_reason":"end_turn","stop_sequence":null,
"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,
"output_tokens":40,"service_tier":"standard"}})";
    check_usage(kJson, body, usage(60, 40, 100));
}

TEST_CASE("Anthropic message JSON without cache fields") {
    check_usage(kJson, R"({"type":"message","usage":{"input_tokens":12,"output_tokens":6}})", usage(12, 6, 18));
}

// --- SSE ---

TEST_CASE("OpenAI chat stream with include_usage: the final chunk's usage") {
    const std::string body =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
        "\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"Hello \\\"usage\\\":{\\\"prompt_tokens\\\":5}\"},\"finish_reason\":null}],\"usage\":null}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
        "17,\"completion_tokens\":9,\"total_tokens\":26,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n"
        "data: [DONE]\n\n";
    check_usage(kSse, body, usage(17, 9, 26));
}

TEST_CASE("OpenAI chat stream without include_usage finds nothing") {
    const std::string body =
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    check_usage(kSse, body, kNone);
}

TEST_CASE("a stream reporting usage in every chunk: the latest counts") {
    const std::string body =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n";
    check_usage(kSse, body, usage(5, 3, 8));
}

TEST_CASE("Anthropic stream: input from message_start, output from message_delta") {
    const std::string body =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,"
        "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":2,"
        "\"output_tokens\":1}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: ping\n"
        "data: {\"type\": \"ping\"}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
        "event: content_block_stop\n"
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
        "\"usage\":{\"output_tokens\":15}}\n\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    check_usage(kSse, body, usage(30, 15, 45));
}

TEST_CASE("Anthropic stream whose message_delta repeats the cumulative input side") {
    const std::string body =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":40}}\n\n";
    check_usage(kSse, body, usage(25, 40, 65));
}

TEST_CASE("OpenAI responses stream: usage nested in response.completed") {
    const std::string body =
        "event: response.created\n"
        "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\","
        "\"usage\":null}}\n\n"
        "event: response.output_text.delta\n"
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n"
        "event: response.completed\n"
        "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\","
        "\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":4,"
        "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":15}}}\n\n";
    check_usage(kSse, body, usage(11, 4, 15));
}

// A whole Responses API stream as OpenAI sends it: every event names "usage" inside
// "response" only at the start (null) and the end; the details objects nested in the
// final usage (cached_tokens, reasoning_tokens) are not token counts of their own.
std::string responses_stream(std::string_view final_type, std::string_view final_status) {
    std::string s =
        "event: response.created\n"
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_68a0\","
        "\"object\":\"response\",\"created_at\":1755000000,\"status\":\"in_progress\",\"error\":null,"
        "\"model\":\"gpt-4.1-mini\",\"output\":[],\"usage\":null,\"metadata\":{}}}\n\n"
        "event: response.in_progress\n"
        "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_68a0\","
        "\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n"
        "event: response.output_item.added\n"
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,"
        "\"item\":{\"id\":\"msg_68a0\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],"
        "\"role\":\"assistant\"}}\n\n"
        "event: response.content_part.added\n"
        "data: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"msg_68a0\","
        "\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],"
        "\"text\":\"\"}}\n\n"
        "event: response.output_text.delta\n"
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_68a0\","
        "\"output_index\":0,\"content_index\":0,\"delta\":\"the \\\"usage\\\": {\\\"total_tokens\\\": 9}\","
        "\"logprobs\":[]}\n\n"
        "event: response.output_text.done\n"
        "data: {\"type\":\"response.output_text.done\",\"sequence_number\":5,\"item_id\":\"msg_68a0\","
        "\"output_index\":0,\"content_index\":0,\"text\":\"the usage\",\"logprobs\":[]}\n\n"
        "event: response.content_part.done\n"
        "data: {\"type\":\"response.content_part.done\",\"sequence_number\":6,\"item_id\":\"msg_68a0\","
        "\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],"
        "\"text\":\"the usage\"}}\n\n"
        "event: response.output_item.done\n"
        "data: {\"type\":\"response.output_item.done\",\"sequence_number\":7,\"output_index\":0,"
        "\"item\":{\"id\":\"msg_68a0\",\"type\":\"message\",\"status\":\"completed\",\"content\":[],"
        "\"role\":\"assistant\"}}\n\n";
    s += "event: ";
    s += final_type;
    s += "\ndata: {\"type\":\"";
    s += final_type;
    s += "\",\"sequence_number\":8,\"response\":{\"id\":\"resp_68a0\",\"object\":\"response\",\"status\":\"";
    s += final_status;
    s += "\",\"output\":[],\"usage\":{\"input_tokens\":1200,\"input_tokens_details\":{\"cached_tokens\":1024},"
         "\"output_tokens\":57,\"output_tokens_details\":{\"reasoning_tokens\":32},\"total_tokens\":1257},"
         "\"user\":null,\"metadata\":{}}}\n\n";
    return s;
}

TEST_CASE("OpenAI responses stream, every event of a real one: the final event's nested usage") {
    // The final event may be completed, incomplete (max_output_tokens) or failed.
    check_usage(kSse, responses_stream("response.completed", "completed"), usage(1200, 57, 1257));
    check_usage(kSse, responses_stream("response.incomplete", "incomplete"), usage(1200, 57, 1257));
    check_usage(kSse, responses_stream("response.failed", "failed"), usage(1200, 57, 1257));
}

TEST_CASE("OpenAI responses stream cut before its final event finds nothing") {
    std::string s = responses_stream("response.completed", "completed");
    s.resize(s.find("event: response.completed"));
    check_usage(kSse, s, kNone);
}

TEST_CASE("OpenAI responses JSON: the details objects do not replace the totals") {
    // cached_tokens and reasoning_tokens are not fields the tap reads; the nested
    // objects are skipped whole, before and after the integer fields.
    const std::string body = R"({"id":"resp_1","object":"response","status":"completed","output":[],)"
                             R"("usage":{"input_tokens_details":{"cached_tokens":7,"input_tokens":999},)"
                             R"("input_tokens":20,"output_tokens":5,"output_tokens_details":)"
                             R"({"reasoning_tokens":3,"output_tokens":999},"total_tokens":25}})";
    check_usage(kJson, body, usage(20, 5, 25));
}

TEST_CASE("SSE lines may end in CRLF or a lone CR") {
    const std::string event = "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}";
    check_usage(kSse, ": ping\r\n\r\n" + event + "\r\n\r\ndata: [DONE]\r\n\r\n", usage(3, 4, 7));
    check_usage(kSse, ": ping\r\r" + event + "\r\rdata: [DONE]\r\r", usage(3, 4, 7));
}

TEST_CASE("SSE data split over several data lines of one event is joined") {
    const std::string body =
        "data: {\"usage\":\n"
        "data: {\"prompt_tokens\":3,\n"
        "data:\"completion_tokens\":4}}\n\n";
    check_usage(kSse, body, usage(3, 4, 7));
    check_usage(kSse, "data: {\"usage\":\r\ndata: {\"prompt_tokens\":3}}\r\n\r\n", usage(3, 0, 3));
    check_usage(kSse, "data: {\"usage\":\rdata: {\"prompt_tokens\":3}}\r\r", usage(3, 0, 3));
}

TEST_CASE("SSE data lines are joined with a newline, as the SSE spec joins them") {
    // {"usage":{"prompt_tokens":1\n2}} is not JSON: a joiner other than a newline would
    // read 12 here.
    check_usage(kSse, "data: {\"usage\":{\"prompt_tokens\":1\ndata: 2}}\n\n", kNone);
}

TEST_CASE("SSE comments and other fields are not data") {
    const std::string body =
        ": \"usage\":{\"prompt_tokens\":999}\n"
        "event: \"usage\":{\"prompt_tokens\":999}\n"
        "id: 1\n"
        "datum: \"usage\":{\"prompt_tokens\":999}\n"
        "data: {\"type\":\"x\"}\n\n";
    check_usage(kSse, body, kNone);
}

TEST_CASE("a usage object cut off by the end of its SSE event is dropped") {
    const std::string body =
        "data: {\"usage\":{\"prompt_tokens\":5\n\n"
        "data: ,\"completion_tokens\":7}}\n\n";
    check_usage(kSse, body, kNone);
}

TEST_CASE("an SSE stream that ends without a blank line still counts a complete usage") {
    check_usage(kSse, "data: {\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}", usage(2, 1, 3));
}

// --- large bodies ---

TEST_CASE("a multi-MiB JSON body with usage at the end") {
    std::string body = R"({"object":"list","data":[)";
    std::mt19937_64 rng(3);
    for (int item = 0; body.size() < (3u << 20); ++item) {
        if (item != 0) body += ',';
        body += R"({"object":"embedding","index":)" + std::to_string(item) + R"(,"embedding":[)";
        for (int i = 0; i < 256; ++i) {
            if (i != 0) body += ',';
            body += "-0.00" + std::to_string(rng() % 100000000);
        }
        body += R"(],"note":"a \"usage\" string \\ with \\\"usage\\\":{\"prompt_tokens\":1} inside"})";
    }
    body += R"(],"model":"text-embedding-3-large","usage":{"prompt_tokens":123456,"total_tokens":123456}})";
    REQUIRE(body.size() > (3u << 20));
    const TokenUsage want = usage(123456, 0, 123456);
    check_same(feed_whole(kJson, body), want);
    check_same(feed_bytewise(kJson, body), want);
    check_same(feed_random_splits(kJson, body, 9, 70'000), want);
    check_same(feed_random_splits(kJson, body, 10, 5), want);
}

TEST_CASE("a long stream whose usage comes in its last event") {
    std::string body;
    for (int i = 0; i < 20'000; ++i) {
        body += "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token " + std::to_string(i) +
                "\"}}],\"usage\":null}\n\n";
    }
    body += "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20000,\"total_tokens\":20010}}\n\n";
    body += "data: [DONE]\n\n";
    const TokenUsage want = usage(10, 20000, 20010);
    check_same(feed_whole(kSse, body), want);
    check_same(feed_bytewise(kSse, body), want);
    check_same(feed_random_splits(kSse, body, 11, 4096), want);
}

TEST_CASE("a usage object larger than the bound is skipped, a later one still counts") {
    std::string big = R"({"usage":{"prompt_tokens":1,"padding":")";
    big.append(UsageTap::kMaxUsageObject, 'x');
    big += R"("},"usage":{"prompt_tokens":4,"completion_tokens":2}})";
    check_usage(kJson, big, usage(4, 2, 6));
}

// --- no usage, malformed usage, garbage ---

TEST_CASE("bodies without usage find nothing") {
    check_usage(kJson, R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}})", kNone);
    check_usage(kJson, "", kNone);
    check_usage(kJson, "<html><body>502 Bad Gateway</body></html>", kNone);
    check_usage(kJson, R"({"choices":[{"message":{"content":"usage"}}],"label":"usage"})", kNone);
    check_usage(kJson, R"({"usage":null})", kNone);
    check_usage(kSse, "data: [DONE]\n\n", kNone);
}

TEST_CASE("a usage object without known integer fields finds nothing") {
    // e.g. a tool's JSON schema echoed back with a parameter named usage
    check_usage(kJson, R"({"tools":[{"parameters":{"properties":{"usage":{"type":"object","input_tokens":{"type":"integer"}}}}}]})",
                kNone);
    check_usage(kJson, R"({"usage":{"prompt_tokens":"12","completion_tokens":-3,"total_tokens":1.5}})", kNone);
    check_usage(kJson, R"({"usage":{"prompt_tokens":18446744073709551616}})", kNone);
}

TEST_CASE("a field of the wrong type is skipped and the others still count") {
    check_usage(kJson, R"({"usage":{"prompt_tokens":2.5,"completion_tokens":7,"total_tokens":"x","input_tokens":[1]}})",
                usage(0, 7, 7));
}

TEST_CASE("a malformed usage object counts for nothing, a later valid one counts") {
    check_usage(kJson, R"({"usage":{"prompt_tokens":5,,}, "usage":{"prompt_tokens":6,"completion_tokens":1}})",
                usage(6, 1, 7));
    check_usage(kJson, R"({"usage":{"prompt_tokens":5 "completion_tokens":1}})", kNone);
    check_usage(kJson, R"({"usage":{"prompt_tokens":5,"completion_tokens":1)", kNone);  // truncated
}

TEST_CASE("escaped quotes and backslashes never start a usage key") {
    check_usage(kJson, R"({"text":"\"usage\":{\"prompt_tokens\":9}","x":"\\\"usage\\\":{\"prompt_tokens\":9}"})", kNone);
    // A key that merely ends in an escaped quote and usage.
    check_usage(kJson, R"({"the \"usage":{"prompt_tokens":9},"odd \\\"usage":{"prompt_tokens":9}})", kNone);
    check_usage(kJson, R"({"even \\","usage":{"prompt_tokens":9}})", usage(9, 0, 9));
    check_usage(kJson, R"({"text":"ends in a backslash \\","usage":{"prompt_tokens":9,"completion_tokens":1}})",
                usage(9, 1, 10));
}

// Bodies where a match, a line end or an escape straddles the split.
TEST_CASE("every two-piece split of a tricky body gives the same result as the whole") {
    const std::string json_bodies[] = {
        R"(""usage":{"prompt_tokens":4}})",
        R"("us""usage" : {"prompt_tokens":4}})",
        R"({"a":"\\","usage":{"prompt_tokens":4,"x":"}\"{"}})",
        R"({"the \"usage":{"prompt_tokens":9},"usage" :
            {"prompt_tokens":5}})",
        R"({"usage":"usage","usage":{"completion_tokens":3}})",
    };
    const std::string sse_bodies[] = {
        "data: {\"usage\":\r\ndata: {\"prompt_tokens\":3}}\r\n\r\n",
        ":x\r\rdata:{\"usage\":{\"prompt_tokens\":3}}\r\r",
        "data\ndata: {\"usage\":{\"prompt_tokens\":3}}\n\n",
        "event: e\ndata: {\"usage\":{\"prompt_tokens\":3\n\ndata: }}\n\n",
    };
    auto check_splits = [](bool sse, const std::string& body) {
        const TokenUsage whole = feed_whole(sse, body);
        for (std::size_t k = 0; k <= body.size(); ++k) {
            UsageTap tap(sse);
            tap.feed(std::string_view(body).substr(0, k));
            tap.feed(std::string_view(body).substr(k));
            INFO("body " << body << " split at " << k);
            check_same(tap.result(), whole);
        }
        return whole;
    };
    check_same(check_splits(kJson, json_bodies[0]), usage(4, 0, 4));
    check_same(check_splits(kJson, json_bodies[1]), usage(4, 0, 4));
    check_same(check_splits(kJson, json_bodies[2]), usage(4, 0, 4));
    check_same(check_splits(kJson, json_bodies[3]), usage(5, 0, 5));
    check_same(check_splits(kJson, json_bodies[4]), usage(0, 3, 3));
    check_same(check_splits(kSse, sse_bodies[0]), usage(3, 0, 3));
    check_same(check_splits(kSse, sse_bodies[1]), usage(3, 0, 3));
    check_same(check_splits(kSse, sse_bodies[2]), usage(3, 0, 3));
    check_same(check_splits(kSse, sse_bodies[3]), kNone);
}

TEST_CASE("garbage of any shape never crashes the tap") {
    std::mt19937_64 rng(12345);
    const std::string alphabet = "{}[]\":,\\ \n\r\tusage_tokenpromptcompletiondata:0123456789-.e";
    for (int round = 0; round < 2'000; ++round) {
        std::string junk;
        const std::size_t n = rng() % 2'000;
        for (std::size_t i = 0; i < n; ++i) {
            junk += rng() % 4 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
        }
        if (round % 3 == 0) junk.insert(rng() % (junk.size() + 1), R"("usage":{"prompt_tokens":)");
        for (bool sse : {kJson, kSse}) {
            const TokenUsage whole = feed_whole(sse, junk);
            const TokenUsage split = feed_random_splits(sse, junk, static_cast<std::uint64_t>(round), 13);
            CHECK(whole.found == split.found);
            CHECK(whole.total_tokens == split.total_tokens);
        }
    }
}

TEST_CASE("result can be read at any time and only grows as usage arrives") {
    UsageTap tap(kSse);
    CHECK_FALSE(tap.result().found);
    tap.feed("event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
    check_same(tap.result(), usage(25, 1, 26));
    tap.feed("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n");
    check_same(tap.result(), usage(25, 15, 40));
    CHECK(tap.sse());
}

}  // namespace
}  // namespace rr::gateway

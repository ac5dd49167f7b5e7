#include <doctest/doctest.h>

#include <string>

#include "ringrelay/gateway/request_body.hpp"

using namespace rr::gateway;

namespace {
RequestFields read(std::string body) {
    static simdjson::ondemand::parser parser;
    return read_request_fields(parser, body);
}
}  // namespace

TEST_CASE("model and stream are read in any order, among other members") {
    RequestFields f = read(R"({"messages":[{"role":"user","content":"{\"model\":\"no\"}"}],"stream":true,"model":"gpt-4o"})");
    CHECK(f.error == BodyError::none);
    CHECK(f.model == "gpt-4o");
    CHECK(f.stream);
    f = read(R"({"model":"claude-3","max_tokens":5})");
    CHECK(f.model == "claude-3");
    CHECK_FALSE(f.stream);
}

TEST_CASE("escaped model names are unescaped") {
    const RequestFields f = read(R"({"model":"a\"b\\c"})");
    CHECK(f.model == "a\"b\\c");
}

TEST_CASE("bodies that cannot be routed say why") {
    CHECK(read("hello").error != BodyError::none);
    CHECK(read("").error != BodyError::none);
    CHECK(read("[1,2]").error == BodyError::not_object);
    CHECK(read(R"({"messages":[]})").error == BodyError::no_model);
    CHECK(read(R"({"model":5})").error == BodyError::model_not_string);
    CHECK(read(R"({"model":""})").error == BodyError::model_not_string);
    CHECK(read(R"({"model":"x")").error != BodyError::none);  // truncated
}

TEST_CASE("rewriting the model keeps every other byte") {
    std::string body = R"({"stream":false, "model" : "alias" ,"messages":[1]})";
    simdjson::ondemand::parser parser;
    const RequestFields f = read_request_fields(parser, body);
    REQUIRE(f.error == BodyError::none);
    rewrite_model(body, f, "real\"model");
    CHECK(body == R"({"stream":false, "model" : "real\"model" ,"messages":[1]})");
}

TEST_CASE("a large body with the model at the end is read") {
    std::string big = R"({"messages":[)";
    for (int i = 0; i < 20000; ++i) big += R"({"role":"user","content":"hello there"},)";
    big += R"({"role":"user","content":"x"}],"model":"late"})";
    CHECK(read(big).model == "late");
}

TEST_CASE("a body with the model key twice is refused, whatever the spelling of the second") {
    RequestFields f = read(R"({"model":"allowed","messages":[],"model":"forbidden"})");
    CHECK(f.error == BodyError::duplicate_model);
    CHECK(describe(f.error) == "request body has more than one \"model\" field");
    f = read(R"({"model":"allowed","mod\u0065l":"forbidden"})");
    CHECK(f.error == BodyError::duplicate_model);
    f = read(R"({"model":"same","model":"same"})");
    CHECK(f.error == BodyError::duplicate_model);
    // Only the top level counts: a nested "model" is the upstream's business.
    f = read(R"({"model":"allowed","tools":[{"model":"x"}],"metadata":{"model":"y"}})");
    CHECK(f.error == BodyError::none);
    CHECK(f.model == "allowed");
}

TEST_CASE("the session fields are read when present, as strings only") {
    RequestFields f = read(R"({"model":"m","prompt_cache_key":"conv-1","metadata":{"user_id":"user_ab_session_9"}})");
    CHECK(f.error == BodyError::none);
    CHECK(f.prompt_cache_key == "conv-1");
    CHECK(f.metadata_user_id == "user_ab_session_9");
    f = read(R"({"metadata":{"other":1,"user_id":"u\u0031"},"model":"m"})");
    CHECK(f.metadata_user_id == "u1");
    CHECK(f.prompt_cache_key.empty());
    f = read(R"({"model":"m","prompt_cache_key":42,"metadata":"not an object"})");
    CHECK(f.error == BodyError::none);  // the upstream judges their types
    CHECK(f.prompt_cache_key.empty());
    CHECK(f.metadata_user_id.empty());
}

namespace {
// The body after the edit that makes it ask for usage ("" when none is offered).
std::string asking_usage(std::string body) {
    static simdjson::ondemand::parser parser;
    const RequestFields f = read_request_fields(parser, body);
    REQUIRE(f.error == BodyError::none);
    if (!f.ask_usage) return "";
    BodyEdit e = *f.ask_usage;
    apply_edits(body, std::span(&e, 1));
    return body;
}
}  // namespace

TEST_CASE("the edit that asks for usage fits each shape of stream_options") {
    CHECK(asking_usage(R"({"model":"m","stream":true} )") ==
          R"({"model":"m","stream":true,"stream_options":{"include_usage":true}} )");
    CHECK(asking_usage(R"({"model":"m","stream_options":null})") ==
          R"({"model":"m","stream_options":{"include_usage":true}})");
    CHECK(asking_usage(R"({"model":"m","stream_options":{ }})") ==
          R"({"model":"m","stream_options":{"include_usage":true }})");
    CHECK(asking_usage(R"({"model":"m","stream_options":{"include_obfuscation":false}})") ==
          R"({"model":"m","stream_options":{"include_usage":true,"include_obfuscation":false}})");
    CHECK(asking_usage(R"({"model":"m","stream_options":{"include_usage":false },"x":1})") ==
          R"({"model":"m","stream_options":{"include_usage":true },"x":1})");
    // Already asked, or a shape the upstream should judge: no edit.
    CHECK(asking_usage(R"({"model":"m","stream_options":{"include_usage":true}})").empty());
    CHECK(asking_usage(R"({"model":"m","stream_options":"yes"})").empty());
    CHECK(asking_usage(R"({"model":"m","stream_options":{"include_usage":1}})").empty());
}

TEST_CASE("a model rewrite and the usage edit apply together, in any order of the members") {
    for (std::string body : {std::string(R"({"stream_options":{},"model":"short","stream":true})"),
                             std::string(R"({"model":"short","stream":true,"stream_options":{}})")}) {
        static simdjson::ondemand::parser parser;
        const RequestFields f = read_request_fields(parser, body);
        REQUIRE(f.ask_usage);
        const std::string token = model_token("a-much-longer-model-name");
        BodyEdit edits[] = {model_edit(f, token), *f.ask_usage};
        apply_edits(body, edits);
        CHECK(body.find(R"("model":"a-much-longer-model-name")") != std::string::npos);
        CHECK(body.find(R"("stream_options":{"include_usage":true})") != std::string::npos);
        simdjson::dom::parser check;
        CHECK(check.parse(body).error() == simdjson::SUCCESS);
    }
}

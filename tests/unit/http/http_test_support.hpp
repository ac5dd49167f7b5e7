// Shared by the http unit tests: real client requests as captured on the wire,
// exact-size copies (so ASan sees any read past the bytes a parser was given),
// and printable results for doctest.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringrelay/http.hpp"

namespace doctest {
template <>
struct StringMaker<rr::http::Error> {
    static String convert(rr::http::Error e) {
        return String(rr::http::message_for(e).data(), static_cast<unsigned>(rr::http::message_for(e).size()));
    }
};
template <>
struct StringMaker<rr::http::ParseStatus> {
    static String convert(rr::http::ParseStatus s) {
        switch (s) {
            case rr::http::ParseStatus::complete: return "complete";
            case rr::http::ParseStatus::incomplete: return "incomplete";
            case rr::http::ParseStatus::error: return "error";
        }
        return "?";
    }
};
template <>
struct StringMaker<rr::http::BodyKind> {
    static String convert(rr::http::BodyKind b) {
        switch (b) {
            case rr::http::BodyKind::none: return "none";
            case rr::http::BodyKind::content_length: return "content_length";
            case rr::http::BodyKind::chunked: return "chunked";
            case rr::http::BodyKind::until_close: return "until_close";
        }
        return "?";
    }
};
}  // namespace doctest

namespace rr::http::test {

// A heap copy of exactly bytes.size() bytes: a parser that reads one byte too far
// trips AddressSanitizer instead of reading a string's spare capacity.
class ExactBuffer {
public:
    explicit ExactBuffer(std::string_view bytes)
        : size_(bytes.size()), data_(std::make_unique<char[]>(bytes.size() == 0 ? 1 : bytes.size())) {
        if (size_ != 0) std::memcpy(data_.get(), bytes.data(), size_);
    }
    std::string_view view() const { return {data_.get(), size_}; }
    const char* data() const { return data_.get(); }

private:
    std::size_t size_;
    std::unique_ptr<char[]> data_;
};

// A request head plus "Content-Length: <n>\r\n\r\n" and the body.
inline std::string with_body(std::string_view head_fields, std::string_view body) {
    std::string r(head_fields);
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    r += body;
    return r;
}

struct Sample {
    std::string name;
    std::string bytes;
};

// Requests as real clients send them (header order and case as captured), with
// our own secrets and hosts.
inline std::vector<Sample> real_requests() {
    return {
        {"curl GET",
         "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
         "Authorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\n\r\n"},
        {"python http.client GET",
         "GET /healthz HTTP/1.1\r\nHost: localhost:8080\r\nAccept-Encoding: identity\r\n\r\n"},
        {"ab -k HTTP/1.0 keep-alive",
         "GET /v1/models HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1:8080\r\n"
         "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n"},
        {"OpenAI SDK POST",
         with_body("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                   "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nAccept: application/json\r\n"
                   "Content-Type: application/json\r\nUser-Agent: OpenAI/Python 1.35.3\r\n"
                   "X-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.35.3\r\nX-Stainless-OS: Linux\r\n"
                   "X-Stainless-Arch: x64\r\nX-Stainless-Runtime: CPython\r\n"
                   "X-Stainless-Runtime-Version: 3.11.2\r\n"
                   "Authorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\n"
                   "X-Stainless-Async: false\r\n",
                   R"({"messages":[{"role":"user","content":"Say hi"}],"model":"gpt-4o-mini","stream":true})")},
        {"Anthropic SDK POST",
         with_body("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:8080\r\naccept-encoding: gzip, deflate\r\n"
                   "connection: keep-alive\r\naccept: application/json\r\ncontent-type: application/json\r\n"
                   "anthropic-version: 2023-06-01\r\nuser-agent: Anthropic/Python 0.28.1\r\n"
                   "x-api-key: rr-9ZyXwVuTsRqPoNmLkJiHgFeDcBa8765432109xYz\r\n"
                   "x-stainless-lang: python\r\nx-stainless-package-version: 0.28.1\r\n"
                   "x-stainless-os: Linux\r\nx-stainless-arch: x64\r\nx-stainless-runtime: CPython\r\n"
                   "x-stainless-runtime-version: 3.11.2\r\nx-stainless-async: false\r\n",
                   R"({"max_tokens":64,"messages":[{"role":"user","content":"Hello"}],)"
                   R"("model":"claude-3-5-sonnet-20240620"})")},
        {"curl chunked upload",
         "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
         "Authorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\n"
         "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
         "2a\r\n{\"model\":\"text-embedding-3-small\",\"input\":\r\n9\r\n\"hello\"}\n\r\n0\r\n\r\n"},
        {"curl Expect: 100-continue",
         "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n"
         "Accept: */*\r\nAuthorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\n"
         "Content-Length: 1048576\r\nContent-Type: multipart/form-data; boundary=------------------------"
         "4bd2f1c2a5c6e8f0\r\nExpect: 100-continue\r\n\r\n"},
        {"node undici fetch POST",
         with_body("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\n"
                   "content-type: application/json\r\n"
                   "authorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\naccept: */*\r\n"
                   "accept-language: *\r\nsec-fetch-mode: cors\r\nuser-agent: node\r\n"
                   "accept-encoding: gzip, deflate\r\n",
                   R"({"model":"gpt-4o","messages":[{"role":"user","content":"ping"}]})")},
        {"Go net/http POST",
         with_body("POST /v1/completions?api-version=2024-02-01 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                   "User-Agent: Go-http-client/1.1\r\nX-Request-Id: 7f3c9a12-55e1-4b8e-9d0f-2c6b1a4e8f90\r\n",
                   R"({"model":"gpt-3.5-turbo-instruct","prompt":"x"})")},
        {"wrk GET", "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"},
        {"proxy absolute-form GET",
         "GET http://api.example.com/v1/models?limit=5 HTTP/1.1\r\nHost: api.example.com\r\n"
         "Proxy-Connection: keep-alive\r\nUser-Agent: curl/7.88.1\r\n\r\n"},
        {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 0\r\n\r\n"},
    };
}

// Two keep-alive requests sent back to back in one write.
inline std::string pipelined_pair() {
    return with_body("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                     "Authorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\n",
                     R"({"model":"gpt-4o-mini","messages":[]})") +
           "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
           "Authorization: Bearer rr-4f8K2mXq9LbT7vN3pR6sW1yZ0aC5dE8gH2jK4mN7\r\n\r\n";
}

}  // namespace rr::http::test

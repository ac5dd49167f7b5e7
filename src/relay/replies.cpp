#include "ringrelay/relay/replies.hpp"

#include "ringrelay/http.hpp"
#include "ringrelay/obs/log.hpp"

namespace rr::relay {

void append_json_response(std::string& out, int status, std::string_view body, std::string_view request_id,
                          bool keep_alive, std::string_view extra_headers) {
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += http::reason_phrase(status);
    out += "\r\nContent-Type: application/json\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\nX-Request-Id: ";
    out += request_id;
    out += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
}

// OpenAI's shape ({"error":{"message","type","code"}}) with Anthropic's top-level
// "type":"error" beside it: one body both families of clients read their message
// from (Anthropic's SDKs and the Vercel provider parse {"type":"error","error":{...}};
// OpenAI's ignore the extra key). It is also the data of an SSE error event.
std::string error_body(std::string_view code, std::string_view message) {
    std::string body = "{\"type\":\"error\",\"error\":{\"message\":\"";
    obs::append_json_escaped(body, message);
    body += "\",\"type\":\"ringrelay_error\",\"code\":\"";
    obs::append_json_escaped(body, code);
    body += "\"}}";
    return body;
}

void append_error_response(std::string& out, int status, std::string_view code, std::string_view message,
                           std::string_view request_id, bool keep_alive, std::string_view extra_headers) {
    std::string extra = "X-Ringrelay-Error: ";
    extra += code;
    extra += "\r\n";
    extra += extra_headers;
    append_json_response(out, status, error_body(code, message), request_id, keep_alive, extra);
}

}  // namespace rr::relay

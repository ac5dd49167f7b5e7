#include "replies.hpp"

#include "ringrelay/obs/log.hpp"

namespace rr::relay {

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void append_json_response(std::string& out, int status, std::string_view body, std::string_view request_id,
                          bool keep_alive, std::string_view extra_headers) {
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\nContent-Type: application/json\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\nX-Request-Id: ";
    out += request_id;
    out += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
}

std::string error_body(std::string_view code, std::string_view message) {
    std::string body = "{\"error\":{\"message\":\"";
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

// Error -> status and message, for the gateway's own error answers.
#include "ringrelay/http.hpp"

namespace rr::http {

int status_for(Error e) noexcept {
    switch (e) {
        case Error::uri_too_long: return 414;
        case Error::header_too_large: return 431;
        case Error::version_not_supported: return 505;
        case Error::not_implemented: return 501;
        case Error::body_too_large: return 413;
        case Error::none:
        case Error::bad_request:
        case Error::bad_chunk: break;
    }
    return 400;
}

std::string_view message_for(Error e) noexcept {
    switch (e) {
        case Error::none: return "no error";
        case Error::bad_request: return "malformed HTTP request";
        case Error::uri_too_long: return "request line too long";
        case Error::header_too_large: return "request header too large";
        case Error::version_not_supported: return "HTTP version not supported";
        case Error::not_implemented: return "transfer coding not supported (only chunked is)";
        case Error::bad_chunk: return "malformed chunked body";
        case Error::body_too_large: return "request body too large";
    }
    return "malformed HTTP request";
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Overloaded";  // not RFC 9110: Anthropic's API answers it
    default: return "Status";
    }
}

}  // namespace rr::http

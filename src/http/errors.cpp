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

}  // namespace rr::http

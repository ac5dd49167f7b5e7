#include "ringrelay/http.hpp"

namespace rr::http {

Method method_of(std::string_view token) noexcept {
    // Exact comparisons only: RFC 9110 9.1 makes the method token case-sensitive.
    switch (token.size()) {
    case 3:
        if (token == "GET") return Method::get;
        if (token == "PUT") return Method::put;
        return Method::other;
    case 4:
        if (token == "HEAD") return Method::head;
        if (token == "POST") return Method::post;
        return Method::other;
    case 5: return token == "PATCH" ? Method::patch : Method::other;
    case 6: return token == "DELETE" ? Method::del : Method::other;
    case 7: return token == "OPTIONS" ? Method::options : Method::other;
    default: return Method::other;
    }
}

}  // namespace rr::http

// GET / on the admin listener: the status page (src/relay/status_page.html, compiled
// in by tools/embed_text.py). It carries no data; its script logs in with the admin
// token (kept in the tab's sessionStorage, never in a cookie or the URL) and polls
// the token-protected JSON and metrics endpoints.
#include "api.hpp"
#include "status_page_html.hpp"

namespace rr::admin {

Action plan_status_page(const Request&) {
    Reply r = Reply::json(200, std::string(kStatusPageHtml));
    r.content_type = "text/html; charset=utf-8";
    // Nothing but this page's own inline script and style may run, it may talk only
    // to this listener, and no other site may frame it.
    r.extra_headers =
        "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
        "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
        "Cache-Control: no-store\r\n";
    return Action::reply(std::move(r));
}

}  // namespace rr::admin

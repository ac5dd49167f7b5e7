#include "ringrelay/relay/body_tracker.hpp"

namespace rr::relay {

BodyTracker::BodyTracker(http::BodyKind kind, std::uint64_t length, std::uint64_t max_body) noexcept
    : kind_(kind), remaining_(kind == http::BodyKind::content_length ? length : 0),
      done_(kind == http::BodyKind::none || (kind == http::BodyKind::content_length && length == 0)),
      chunked_(max_body) {}

std::size_t BodyTracker::measure(std::string_view in, std::string* decoded) noexcept {
    if (done_ || error_ != http::Error::none) return 0;
    std::size_t n = 0;
    switch (kind_) {
    case http::BodyKind::none:
        return 0;
    case http::BodyKind::content_length:
        n = static_cast<std::size_t>(remaining_ < in.size() ? remaining_ : in.size());
        remaining_ -= n;
        done_ = remaining_ == 0;
        if (decoded) decoded->append(in.substr(0, n));
        if (observer_) observer_->on_body(in.substr(0, n));
        break;
    case http::BodyKind::chunked: {
        auto r = chunked_.feed(in, [&](std::string_view d) {
            if (decoded) decoded->append(d);
            if (observer_) observer_->on_body(d);
        });
        if (r.error != http::Error::none) {
            error_ = r.error;
            return 0;
        }
        n = r.consumed;
        done_ = r.done;
        break;
    }
    case http::BodyKind::until_close:
        n = in.size();
        if (decoded) decoded->append(in);
        if (observer_) observer_->on_body(in);
        break;
    }
    bytes_ += n;
    return n;
}

}  // namespace rr::relay

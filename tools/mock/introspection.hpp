// The test-only endpoints under /__mock/ (never counted, never recorded as "last"):
//
//   GET  /__mock/last   200 {"method","path","query","http_version","headers":[[name,value]...],
//                       "body"} of the latest non-/__mock request; 404 when there is none
//   GET  /__mock/stats  200 {"requests":n, "connections_accepted":n, "connections_open":n,
//                       "streams_started":n, ...} (see Counter in stats.hpp)
//   POST /__mock/reset  200 {"ok":true}: zeroes the counters, forgets the last request
//                       and every failing path
//   POST /__mock/fail?path=P&status=S
//                       200 {"ok":true}: from now on every request for exactly path P
//                       (any method, any headers) is answered with status S (400..599)
//                       and an error body; status=0 makes P answer normally again.
//                       For what a header cannot reach: a gateway's health check.
//
// Cost: stats sums one cache line per loop; last copies one request under a lock.
#pragma once

#include <string>
#include <string_view>

#include <ringrelay/http.hpp>

#include "stats.hpp"

namespace rr::mock {

inline constexpr std::string_view kIntrospectionPrefix = "/__mock/";

void append_introspection_answer(const http::RequestHead& head, MockState& state,
                                 std::string& out, std::string& scratch);

}  // namespace rr::mock

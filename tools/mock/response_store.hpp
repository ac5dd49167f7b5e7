// The responses a mock made with POST /v1/responses, so that GET/DELETE
// /v1/responses/{id}, GET .../input_items and POST .../cancel answer for them (and 404
// for any other id, as OpenAI does). Shared by the mock's loops (one mutex); cleared
// by POST /__mock/reset. Ids carry the mock's name (--name, else "mock<port>"), so a
// test sees which upstream made a response.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rr::mock {

struct StoredResponse {
    std::string object;       // the completed response object (JSON)
    std::string input_items;  // the input item list object (JSON)
};

class ResponseStore {
public:
    static constexpr std::size_t kMaxStored = 100000;  // a long load test: the oldest are not kept apart, new ones stop

    void put(std::string id, StoredResponse r);
    std::optional<StoredResponse> get(std::string_view id) const;
    bool erase(std::string_view id);
    void clear();

private:
    mutable std::mutex mu_;
    std::unordered_map<std::string, StoredResponse> by_id_;  // guarded by mu_
};

}  // namespace rr::mock

#include "response_store.hpp"

namespace rr::mock {

void ResponseStore::put(std::string id, StoredResponse r) {
    std::lock_guard lock(mu_);
    if (by_id_.size() >= kMaxStored) return;
    by_id_.insert_or_assign(std::move(id), std::move(r));
}

std::optional<StoredResponse> ResponseStore::get(std::string_view id) const {
    std::lock_guard lock(mu_);
    const auto it = by_id_.find(std::string(id));
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
}

bool ResponseStore::erase(std::string_view id) {
    std::lock_guard lock(mu_);
    return by_id_.erase(std::string(id)) != 0;
}

void ResponseStore::clear() {
    std::lock_guard lock(mu_);
    by_id_.clear();
}

}  // namespace rr::mock

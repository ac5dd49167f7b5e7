#include <pthread.h>

#include <algorithm>
#include <cstring>

#include "ringrelay/common.hpp"

namespace rr {

void name_this_thread(std::string_view name) noexcept {
    char buf[16];  // the kernel keeps 15 bytes and the terminator
    const std::size_t n = std::min(name.size(), sizeof buf - 1);
    std::memcpy(buf, name.data(), n);
    buf[n] = '\0';
    pthread_setname_np(pthread_self(), buf);
}

}  // namespace rr

// Linked instead of the server when rr_relay_dep is not part of this build.
#include <cstdio>

#include "ringrelay/serve.hpp"

namespace rr {

int serve_main(int, char**) {
    std::fputs("ringrelay: serve is not built\n", stderr);
    return 1;
}

}  // namespace rr

// ringrelay version
#include <lmdb.h>
#include <wolfssl/options.h>
#include <wolfssl/version.h>

#include <cstring>

#include "cli.hpp"

#ifndef RINGRELAY_VERSION
#error "RINGRELAY_VERSION comes from meson (project version)"
#endif

namespace rr::cli {

int version_main(int argc, char** argv) {
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "--help" || a == "-h") {
            print_line("Usage: ringrelay version [--json]\n\nPrint the version of ringrelay and of its libraries.");
            return 0;
        } else {
            throw UsageError(cat("unknown flag ", a, ": run ringrelay version --help"));
        }
    }
    int major = 0, minor = 0, patch = 0;
    mdb_version(&major, &minor, &patch);
    std::string lmdb = cat("LMDB ", std::to_string(major), ".", std::to_string(minor), ".", std::to_string(patch));
    if (json) {
        Json j;
        j.begin_object().key("version").str(RINGRELAY_VERSION).key("lmdb").str(lmdb);
        j.key("wolfssl").str(LIBWOLFSSL_VERSION_STRING).end_object();
        print_line(j.text());
    } else {
        print_line(cat("ringrelay ", RINGRELAY_VERSION, " (", lmdb, ", wolfSSL ", LIBWOLFSSL_VERSION_STRING, ")"));
    }
    return 0;
}

}  // namespace rr::cli

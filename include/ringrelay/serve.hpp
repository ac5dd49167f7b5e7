// Entry point of `ringrelay serve`; argv[0] is "serve", the rest are its flags.
// Returns the process exit code (0 ok, 1 runtime error, 2 usage error).
#pragma once

namespace rr {
int serve_main(int argc, char** argv);
}

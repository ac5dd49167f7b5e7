// Entry point of `ringrelay serve`; argv[0] is "serve", the rest are its flags.
// Returns the process exit code (0 ok, 1 runtime error, 2 usage error).
#pragma once

#include <signal.h>

namespace rr {
int serve_main(int argc, char** argv);

// The signals serve takes with sigtimedwait() in its main thread: SIGTERM/SIGINT
// (drain), SIGUSR1 (reopen logs), SIGHUP. main() blocks them before anything else
// runs, so every thread started later (a library's, a worker, a shard) inherits the
// mask and none can take one with its default action (which kills the process
// without a drain). Commands other than serve unblock them again.
inline sigset_t serve_signals() noexcept {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGHUP);
    return s;
}
}  // namespace rr

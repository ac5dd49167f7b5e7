// The ringrelay binary: dispatches to serve (the server) and to the operator commands.
#include <pthread.h>

#include <cstdio>
#include <exception>
#include <string_view>

#include "cli.hpp"
#include "ringrelay/serve.hpp"

namespace {

constexpr std::string_view kHelp =
    "ringrelay: an API relay gateway for AI model APIs (OpenAI and Anthropic compatible)\n"
    "\n"
    "Usage: ringrelay <command> [flags]\n"
    "\n"
    "Commands:\n"
    "  serve     run the gateway\n"
    "  key       manage client keys: create, list, show, update, revoke, unrevoke, rotate\n"
    "  channel   manage upstream channels: add, list, show, update, enable, disable, remove\n"
    "  block     manage the client address block list: add, list, remove\n"
    "  db        back up the data, show its statistics: backup, stats\n"
    "  version   print the version\n"
    "\n"
    "Every command takes --data DIR (default $RINGRELAY_DATA, else ./data) and --json.\n"
    "Changes take effect on a running server's next request.\n"
    "Run 'ringrelay <command> --help' for more. Exit codes: 0 ok, 1 runtime error, 2 usage error.\n";

int dispatch(int argc, char** argv) {
    using namespace rr::cli;
    if (argc < 2) throw UsageError("missing command: run ringrelay --help");
    std::string_view command = argv[1];
    if (command == "--help" || command == "-h" || command == "help") {
        std::fputs(kHelp.data(), stdout);
        return 0;
    }
    if (command == "serve") return rr::serve_main(argc - 1, argv + 1);
    // Not serve: the signals behave as they do for any command (a pending one acts now).
    const sigset_t signals = rr::serve_signals();
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    if (command == "version" || command == "--version") return version_main(argc - 1, argv + 1);
    for (const Area* area : {&key_area(), &channel_area(), &block_area(), &db_area()}) {
        if (area->name == command) return run_area(*area, argc - 1, argv + 1);
    }
    throw UsageError(rr::cat("unknown command ", command, ": run ringrelay --help"));
}

}  // namespace

int main(int argc, char** argv) {
    // First, before any thread can exist: serve's signals stay pending until serve
    // waits for them (see rr::serve_signals), whenever they arrive.
    const sigset_t signals = rr::serve_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    try {
        int rc = dispatch(argc, argv);
        if (std::fflush(stdout) != 0) {
            std::fputs("ringrelay: cannot write the output\n", stderr);
            return 1;
        }
        return rc;
    } catch (const rr::cli::UsageError& e) {
        std::fprintf(stderr, "ringrelay: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringrelay: %s\n", e.what());
        return 1;
    }
}

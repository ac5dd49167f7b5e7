// Resolving ServeSettings with the precedence of REFERENCE.md section 2: flag >
// environment (RINGRELAY_<FLAG_NAME>) > config file (JSON object keyed by flag name)
// > default.
//
// Start-up only, on the main thread (it reads the environment and the config file).
// The ServeSettings filled are the caller's; nothing is kept here. Errors are a
// false return with a one-line message, never an exception.
#pragma once

#include <string>

#include "ringrelay/relay/settings.hpp"

namespace rr::server {

using relay::Mode;
using relay::ServeSettings;

// Parses argv (flags of `serve`, argv[0] being "serve"), the environment and the
// config file. On error returns false and sets error to a one-line message;
// usage_error tells a bad flag (exit 2) from a runtime problem (exit 1).
bool resolve_settings(int argc, char** argv, ServeSettings& out, std::string& error, bool& usage_error);

// The --help text of `serve`.
const char* serve_usage();

}  // namespace rr::server

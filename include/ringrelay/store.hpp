// The LMDB store: keys, channels, blocks and usage, shared live by the server and the
// CLI. See store/env.hpp (environment, writes, map growth), store/reader.hpp (lookups
// and their lifetimes), store/records.hpp (record layout, views) and store/ops.hpp
// (every mutation, validation, secrets).
#pragma once

#include "ringrelay/store/env.hpp"
#include "ringrelay/store/ops.hpp"
#include "ringrelay/store/reader.hpp"
#include "ringrelay/store/records.hpp"

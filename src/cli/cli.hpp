// Internal to the ringrelay binary: command tables, flag parsing, errors and output.
//
// Errors are exceptions here (the CLI is not a hot path): a UsageError ends the run
// with exit 2, a RuntimeError with exit 1; main() prints either as one stderr line
// "ringrelay: <message>".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringrelay/store.hpp"
#include "ringrelay/store/json.hpp"

namespace rr::cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct RuntimeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct FlagSpec {
    std::string_view name;        // without "--"
    std::string_view value_name;  // "" for a switch
    std::string_view help;
};

class Args {
public:
    std::vector<std::string> positional;
    bool help = false;

    std::optional<std::string_view> value(std::string_view flag) const;
    bool has(std::string_view flag) const { return value(flag).has_value() || is_set(flag); }
    bool is_set(std::string_view switch_name) const;
    bool json() const { return is_set("json"); }
    // --data, else $RINGRELAY_DATA, else ./data
    std::string data_dir() const;
    // True when any flag of `names` was given.
    bool any_of(const std::vector<FlagSpec>& names) const;

    void set_value(std::string name, std::string v) { values_.emplace_back(std::move(name), std::move(v)); }
    void set_switch(std::string name) { switches_.push_back(std::move(name)); }

private:
    std::vector<std::pair<std::string, std::string>> values_;
    std::vector<std::string> switches_;
};

struct Command {
    std::string_view name;
    std::string_view operands;  // "ID", "IP[/PREFIX]", "PATH" or ""
    std::string_view summary;
    std::vector<FlagSpec> flags;
    std::size_t positionals;  // exactly this many operands
    int (*run)(const Args&);
};

struct Area {
    std::string_view name;
    std::string_view summary;
    std::vector<Command> commands;
};

// Runs `area` with argv[0] = the area name, argv[1] = the subcommand.
int run_area(const Area& area, int argc, char** argv);

const Area& key_area();
const Area& channel_area();
const Area& block_area();
const Area& db_area();
int version_main(int argc, char** argv);

// --- helpers shared by the command files ---

// Opens the store named by --data; RuntimeError (or UsageError) with the store's words.
std::unique_ptr<store::Env> open_store(const Args& args);
// Throws for a failed store status: invalid -> UsageError, anything else -> RuntimeError.
void check(const store::Status& s);

// Flag value parsers: on a bad value they throw UsageError naming the flag.
std::uint32_t flag_u32(std::string_view flag, std::string_view text);
std::uint64_t flag_u64(std::string_view flag, std::string_view text);
std::int32_t flag_i32(std::string_view flag, std::string_view text);
std::int64_t flag_duration_ms(std::string_view flag, std::string_view text);
// A duration from now or an RFC 3339 time, in the future; "never" gives 0.
std::int64_t flag_expiry(std::string_view flag, std::string_view text, std::int64_t now_ms);
// Wraps a store validation failure for a flag into a UsageError.
void check_flag(std::string_view flag, const store::Status& s);

// --- output ---

// JSON output: the store's writer, shared with the admin API (store/json.hpp).
using Json = store::JsonWriter;

class Table {
public:
    explicit Table(std::vector<std::string> headers) : rows_{std::move(headers)} {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print() const;
    std::size_t rows() const { return rows_.size() - 1; }

private:
    std::vector<std::vector<std::string>> rows_;
};

// Prints text + '\n' to stdout.
void print_line(std::string_view text);
std::string time_or(std::int64_t unix_ms, std::string_view zero_text);
std::string limit_text(std::uint64_t value);  // 0 -> "-"
std::string list_text(const store::ListView& items, std::string_view empty_text);

}  // namespace rr::cli

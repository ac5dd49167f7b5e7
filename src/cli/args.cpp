// Flag parsing, per-area dispatch and help, and the flag value parsers.
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cli.hpp"

namespace rr::cli {
namespace {

const std::vector<FlagSpec>& common_flags() {
    static const std::vector<FlagSpec> flags = {
        {"data", "DIR", "data directory (default $RINGRELAY_DATA, else ./data)"},
        {"json", "", "print JSON instead of text"},
        {"help", "", "show this help"},
    };
    return flags;
}

const FlagSpec* find_flag(const Command& cmd, std::string_view name) {
    for (const FlagSpec& f : cmd.flags) {
        if (f.name == name) return &f;
    }
    for (const FlagSpec& f : common_flags()) {
        if (f.name == name) return &f;
    }
    return nullptr;
}

std::string command_path(const Area& area, const Command& cmd) {
    return cat("ringrelay ", area.name, " ", cmd.name);
}

void print_flags(const std::vector<FlagSpec>& flags) {
    for (const FlagSpec& f : flags) {
        std::string left = cat("  --", f.name);
        if (!f.value_name.empty()) left += cat(" ", f.value_name);
        std::printf("%-28s %.*s\n", left.c_str(), static_cast<int>(f.help.size()), f.help.data());
    }
}

void print_command_help(const Area& area, const Command& cmd) {
    std::string usage = command_path(area, cmd);
    if (!cmd.operands.empty()) usage += cat(" ", cmd.operands);
    if (!cmd.flags.empty()) usage += " [flags]";
    std::string summary(cmd.summary);
    if (!summary.empty() && summary[0] >= 'a' && summary[0] <= 'z')
        summary[0] = static_cast<char>(summary[0] - 'a' + 'A');
    std::printf("Usage: %s\n\n%s.\n", usage.c_str(), summary.c_str());
    if (!cmd.flags.empty()) {
        std::printf("\nFlags:\n");
        print_flags(cmd.flags);
    }
    std::printf("\nCommon flags:\n");
    print_flags(common_flags());
}

void print_area_help(const Area& area) {
    std::printf("Usage: ringrelay %.*s <command> [flags]\n\n%.*s\n\nCommands:\n", static_cast<int>(area.name.size()),
                area.name.data(), static_cast<int>(area.summary.size()), area.summary.data());
    for (const Command& c : area.commands) {
        std::string left = cat(c.name, c.operands.empty() ? "" : " ", c.operands);
        std::printf("  %-22s %.*s\n", left.c_str(), static_cast<int>(c.summary.size()), c.summary.data());
    }
    std::printf("\nRun 'ringrelay %.*s <command> --help' for its flags.\n", static_cast<int>(area.name.size()),
                area.name.data());
}

Args parse_args(const Area& area, const Command& cmd, int argc, char** argv, int first) {
    Args args;
    bool flags_done = false;
    for (int i = first; i < argc; ++i) {
        std::string_view a = argv[i];
        if (flags_done || !a.starts_with("-") || a == "-") {
            args.positional.emplace_back(a);
            continue;
        }
        if (a == "--") {
            flags_done = true;
            continue;
        }
        if (a == "-h") a = "--help";
        if (!a.starts_with("--"))
            throw UsageError(cat("unknown flag ", a, ": run ", command_path(area, cmd), " --help"));
        std::string_view body = a.substr(2);
        std::size_t eq = body.find('=');
        std::string name(body.substr(0, eq));
        const FlagSpec* spec = find_flag(cmd, name);
        if (spec == nullptr)
            throw UsageError(cat("unknown flag --", name, ": run ", command_path(area, cmd), " --help"));
        if (args.has(name)) throw UsageError(cat("--", name, " is given twice: give it once"));
        if (spec->value_name.empty()) {
            if (eq != std::string_view::npos) throw UsageError(cat("--", name, " takes no value"));
            if (name == "help") args.help = true;
            args.set_switch(name);
            continue;
        }
        std::string value;
        if (eq != std::string_view::npos) {
            value = std::string(body.substr(eq + 1));
        } else {
            if (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("--")) {
                throw UsageError(cat("--", name, " needs a value (", spec->value_name, ")"));
            }
            value = argv[++i];
        }
        args.set_value(name, std::move(value));
    }
    return args;
}

}  // namespace

std::optional<std::string_view> Args::value(std::string_view flag) const {
    for (const auto& [name, v] : values_) {
        if (name == flag) return std::string_view(v);
    }
    return std::nullopt;
}

bool Args::is_set(std::string_view switch_name) const {
    for (const std::string& s : switches_) {
        if (s == switch_name) return true;
    }
    return false;
}

bool Args::any_of(const std::vector<FlagSpec>& names) const {
    for (const FlagSpec& f : names) {
        if (has(f.name)) return true;
    }
    return false;
}

std::string Args::data_dir() const {
    if (auto v = value("data")) {
        if (v->empty()) throw UsageError("--data needs a directory: pass --data DIR");
        return std::string(*v);
    }
    const char* env = std::getenv("RINGRELAY_DATA");
    if (env != nullptr && *env != '\0') return env;
    return "./data";
}

int run_area(const Area& area, int argc, char** argv) {
    if (argc < 2) throw UsageError(cat("missing ", area.name, " command: run ringrelay ", area.name, " --help"));
    std::string_view sub = argv[1];
    if (sub == "--help" || sub == "-h" || sub == "help") {
        print_area_help(area);
        return 0;
    }
    for (const Command& cmd : area.commands) {
        if (cmd.name != sub) continue;
        Args args = parse_args(area, cmd, argc, argv, 2);
        if (args.help) {
            print_command_help(area, cmd);
            return 0;
        }
        if (args.positional.size() != cmd.positionals) {
            std::string want = cmd.positionals == 0 ? std::string("no operands") : cat("one operand, ", cmd.operands);
            throw UsageError(
                cat(area.name, " ", cmd.name, " takes ", want, ": run ", command_path(area, cmd), " --help"));
        }
        return cmd.run(args);
    }
    throw UsageError(cat("unknown ", area.name, " command ", sub, ": run ringrelay ", area.name, " --help"));
}

std::unique_ptr<store::Env> open_store(const Args& args) {
    std::unique_ptr<store::Env> env;
    check(store::Env::open(args.data_dir(), env));
    return env;
}

void check(const store::Status& s) {
    if (s.ok()) return;
    if (s.code == store::Errc::invalid) throw UsageError(s.message);
    throw RuntimeError(s.message);
}

void check_flag(std::string_view flag, const store::Status& s) {
    if (!s.ok()) throw UsageError(cat("--", flag, ": ", s.message));
}

std::uint64_t flag_u64(std::string_view flag, std::string_view text) {
    auto v = parse_u64(text);
    if (!v) throw UsageError(cat("--", flag, ": \"", text, "\" is not a whole number: use digits only, e.g. 10"));
    return *v;
}

std::uint32_t flag_u32(std::string_view flag, std::string_view text) {
    std::uint64_t v = flag_u64(flag, text);
    if (v > std::numeric_limits<std::uint32_t>::max()) {
        throw UsageError(cat("--", flag, ": ", text, " is too large: use at most 4294967295"));
    }
    return static_cast<std::uint32_t>(v);
}

std::int32_t flag_i32(std::string_view flag, std::string_view text) {
    auto v = parse_i64(text);
    if (!v || *v < std::numeric_limits<std::int32_t>::min() || *v > std::numeric_limits<std::int32_t>::max()) {
        throw UsageError(cat("--", flag, ": \"", text, "\" is not a whole number in -2147483648..2147483647"));
    }
    return static_cast<std::int32_t>(*v);
}

std::int64_t flag_duration_ms(std::string_view flag, std::string_view text) {
    auto d = parse_duration(text);
    if (!d)
        throw UsageError(cat("--", flag, ": \"", text, "\" is not a duration: use e.g. 500ms, 30s, 5m, 24h or 30d"));
    return d->count();
}

std::int64_t flag_expiry(std::string_view flag, std::string_view text, std::int64_t now_ms) {
    if (text == "never") return 0;
    std::int64_t at = 0;
    if (auto d = parse_duration(text)) {
        if (d->count() == 0 || d->count() > std::numeric_limits<std::int64_t>::max() - now_ms) {
            throw UsageError(
                cat("--", flag, ": ", text, " is not a usable lifetime: give a positive duration like 30d"));
        }
        at = now_ms + d->count();
    } else if (auto t = parse_rfc3339(text)) {
        at = *t;
    } else {
        throw UsageError(
            cat("--", flag, ": \"", text,
                "\" is neither a duration (30s, 24h, 30d) nor an RFC 3339 time (2025-01-31T00:00:00Z), nor never"));
    }
    if (at <= now_ms) throw UsageError(cat("--", flag, ": ", text, " is in the past: give a future time"));
    return at;
}

}  // namespace rr::cli

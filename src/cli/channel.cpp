// ringrelay channel ...: add, list, show, update, enable, disable, remove.
#include <cstdio>

#include "cli.hpp"

namespace rr::cli {
namespace {

std::vector<FlagSpec> channel_flags(bool add) {
    return {
        {"name", "NAME", add ? "display name (required)" : "display name"},
        {"base-url", "URL",
         add ? "upstream base URL, http(s)://host[:port][/prefix] (required)"
             : "upstream base URL, http(s)://host[:port][/prefix]"},
        {"api-key", "SECRET",
         add ? "upstream credential, - reads it from stdin (required; never printed without --reveal)"
             : "upstream credential, - reads it from stdin (never printed without --reveal)"},
        {"models", "M1,M2", add ? "models the channel serves (required)" : "models the channel serves"},
        {"type", "TYPE", "openai or anthropic (default openai)"},
        {"group", "G1,G2", "groups whose keys may use it (default default)"},
        {"model-map", "A=B,C=D", "rename requested models for the upstream; a source name counts as served"},
        {"weight", "N", "share among channels of one priority, at least 1 (default 1)"},
        {"priority", "N", "lower is tried first (default 0)"},
        {"max-concurrency", "N", "requests in flight at once, 0 = unlimited (default 0)"},
        {"timeout", "DURATION",
         "connect + first response byte; inherit (the default) uses the server's --upstream-timeout"},
        {"first-byte-timeout", "DURATION",
         "no response head within this: try the next channel; off, or inherit (the default: the server's "
         "--first-byte-timeout)"},
        {"pass-headers", "H1,H2",
         "client billing headers this upstream gets: OpenAI-Organization, OpenAI-Project or none (default none)"},
        {"inject-usage", "true|false",
         "OpenAI chat/completions streams ask this upstream for usage (stream_options.include_usage), "
         "so TPM and quota count them (default false)"},
        {"health-path", "PATH",
         "active health check: GET this path under the base URL; \"\" or off turns checks off (default off)"},
        {"health-interval", "DURATION", "time between health checks, at least 1s (default 10s)"},
        {"health-timeout", "DURATION", "how long one health check may take (default 5s)"},
    };
}

std::string read_stdin_line() {
    std::string line;
    for (int c = std::getchar(); c != EOF && c != '\n'; c = std::getchar()) line += static_cast<char>(c);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

void health_patch_from(const Args& args, store::ChannelPatch& p) {
    if (auto v = args.value("health-path")) {
        const std::string path = *v == "off" ? std::string() : std::string(*v);
        check_flag("health-path", store::validate_health_path(path));
        p.health_path = path;
    }
    if (auto v = args.value("health-interval")) {
        const std::int64_t ms = flag_duration_ms("health-interval", *v);
        if (ms < store::kMinHealthIntervalMs || ms > store::kMaxTimeoutMs)
            throw UsageError("--health-interval: must be between 1s and 24h");
        p.health_interval_ms = static_cast<std::uint32_t>(ms);
    }
    if (auto v = args.value("health-timeout")) {
        const std::int64_t ms = flag_duration_ms("health-timeout", *v);
        if (ms <= 0 || ms > store::kMaxTimeoutMs) throw UsageError("--health-timeout: must be between 1ms and 24h");
        p.health_timeout_ms = static_cast<std::uint32_t>(ms);
    }
}

std::string health_text(const store::ChannelView& c) {
    if (c.health_path().empty()) return "off";
    const store::ChannelSpec s = store::spec_of(c);  // the defaults for records older than the fields
    return cat("GET ", c.health_path(), " every ", format_duration(std::chrono::milliseconds(s.health_interval_ms)),
               ", timeout ", format_duration(std::chrono::milliseconds(s.health_timeout_ms)));
}

// --first-byte-timeout: inherit, off (or 0), or a duration up to 24h.
std::uint32_t first_byte_from(std::string_view v) {
    if (v == "inherit") return store::kInheritTimeout;
    if (v == "off") return store::kFirstByteTimeoutOff;
    const std::int64_t ms = flag_duration_ms("first-byte-timeout", v);
    if (ms == 0) return store::kFirstByteTimeoutOff;
    if (ms < 0 || ms > store::kMaxTimeoutMs)
        throw UsageError("--first-byte-timeout: must be between 1ms and 24h, off, or inherit");
    return static_cast<std::uint32_t>(ms);
}

store::ChannelPatch channel_patch_from(const Args& args) {
    store::ChannelPatch p;
    if (auto v = args.value("name")) {
        check_flag("name", store::validate_name("channel name", *v));
        p.name = std::string(*v);
    }
    if (auto v = args.value("base-url")) {
        store::BaseUrl url;
        check_flag("base-url", store::parse_base_url(*v, url));
        p.base_url = url.normalized;
    }
    if (auto v = args.value("api-key")) {
        // "-" reads the credential from stdin, keeping it out of ps and shell history.
        std::string key = *v == "-" ? read_stdin_line() : std::string(*v);
        check_flag("api-key", store::validate_credential(key));
        p.api_key = std::move(key);
    }
    if (auto v = args.value("models")) {
        std::vector<std::string> models;
        check_flag("models", store::parse_model_list(*v, models));
        if (models.empty()) throw UsageError("--models: a channel needs at least one model, e.g. --models gpt-4o");
        p.models = std::move(models);
    }
    if (auto v = args.value("type")) {
        auto type = store::parse_channel_type(*v);
        if (!type) throw UsageError(cat("--type: \"", *v, "\" is not a channel type: use openai or anthropic"));
        p.type = *type;
    }
    if (auto v = args.value("group")) {
        std::vector<std::string> groups;
        check_flag("group", store::parse_group_list(*v, groups));
        if (groups.empty()) throw UsageError("--group: a channel needs at least one group, e.g. --group default");
        p.groups = std::move(groups);
    }
    if (auto v = args.value("model-map")) {
        std::vector<std::pair<std::string, std::string>> map;
        check_flag("model-map", store::parse_model_map(*v, map));
        p.model_map = std::move(map);
    }
    if (auto v = args.value("weight")) {
        p.weight = flag_u32("weight", *v);
        if (*p.weight == 0) throw UsageError("--weight: must be at least 1");
    }
    if (auto v = args.value("priority")) p.priority = flag_i32("priority", *v);
    if (auto v = args.value("max-concurrency")) p.max_concurrency = flag_u32("max-concurrency", *v);
    if (auto v = args.value("timeout"); v && *v == "inherit") {
        p.timeout_ms = store::kInheritTimeout;
    } else if (v) {
        std::int64_t ms = flag_duration_ms("timeout", *v);
        if (ms <= 0 || ms > store::kMaxTimeoutMs)
            throw UsageError("--timeout: must be between 1ms and 24h, or inherit");
        p.timeout_ms = static_cast<std::uint32_t>(ms);
    }
    if (auto v = args.value("first-byte-timeout")) p.first_byte_timeout_ms = first_byte_from(*v);
    if (auto v = args.value("inject-usage")) {
        if (*v != "true" && *v != "false") throw UsageError(cat("--inject-usage: \"", *v, "\" must be true or false"));
        p.inject_usage = *v == "true";
    }
    if (auto v = args.value("pass-headers")) {
        std::uint8_t bits = 0;
        check_flag("pass-headers", store::parse_pass_headers(*v, bits));
        p.pass_headers = bits;
    }
    health_patch_from(args, p);
    return p;
}

// The CLI does not know a running server's --upstream-timeout: an unset timeout
// reads "inherited" (the admin API, inside the server, shows the value).
std::string timeout_text(const store::ChannelView& c) {
    if (c.timeout_ms() == store::kInheritTimeout) return "inherited";
    return format_duration(std::chrono::milliseconds(c.timeout_ms()));
}

std::string first_byte_text(const store::ChannelView& c) {
    if (c.first_byte_timeout_ms() == store::kInheritTimeout) return "inherited";
    if (c.first_byte_timeout_ms() == store::kFirstByteTimeoutOff) return "off";
    return format_duration(std::chrono::milliseconds(c.first_byte_timeout_ms()));
}

void channel_text(const store::ChannelView& c, bool reveal) {
    Table t({"id", std::string(c.id())});
    t.add({"name", std::string(c.name())});
    t.add({"type", std::string(store::to_string(c.type()))});
    t.add({"base url", std::string(c.base_url())});
    t.add({"api key", reveal ? std::string(c.api_key()) : std::string("(hidden: --reveal shows it)")});
    t.add({"enabled", c.enabled() ? "yes" : "no"});
    t.add({"groups", std::string(c.groups().text())});
    t.add({"models", std::string(c.models().text())});
    t.add({"model map", list_text(c.model_map().entries(), "-")});
    t.add({"priority", std::to_string(c.priority())});
    t.add({"weight", std::to_string(c.weight())});
    t.add({"max concurrency", limit_text(c.max_concurrency())});
    t.add({"timeout", timeout_text(c)});
    t.add({"first-byte timeout", first_byte_text(c)});
    t.add({"pass headers", c.pass_headers() ? store::pass_headers_text(c.pass_headers()) : std::string("none")});
    t.add({"inject usage", c.inject_usage() ? "yes" : "no"});
    t.add({"health check", health_text(c)});
    t.add({"created", time_or(c.created_at_ms(), "-")});
    t.add({"updated", time_or(c.updated_at_ms(), "-")});
    t.print();
}

int show_channel(const Args& args, store::Env& env, std::string_view id, bool reveal) {
    store::Reader reader(env);
    check(reader.renew());
    store::ChannelView c = reader.channel_by_id(id);
    if (!c.valid()) throw RuntimeError(cat("no channel with id ", id, ": see ringrelay channel list"));
    if (args.json()) {
        Json j;
        store::channel_json(j, c, reveal);
        print_line(j.text());
    } else {
        channel_text(c, reveal);
    }
    return 0;
}

int channel_add(const Args& args) {
    for (std::string_view required : {"name", "base-url", "api-key", "models"}) {
        if (!args.value(required)) {
            throw UsageError(
                "channel add needs --name, --base-url, --api-key and --models: run ringrelay channel add --help");
        }
    }
    store::ChannelSpec spec;
    channel_patch_from(args).apply_to(spec);
    check(store::validate_channel_spec(spec));
    auto env = open_store(args);
    std::string id;
    check(store::add_channel(*env, spec, now_unix_ms(), id));
    if (args.json()) return show_channel(args, *env, id, false);
    print_line(cat("added channel ", id, " (", spec.name, ")"));
    return 0;
}

int channel_list(const Args& args) {
    auto env = open_store(args);
    store::Reader reader(*env);
    check(reader.renew());
    const std::vector<store::ChannelView> channels = store::channels_in_list_order(reader);
    if (args.json()) {
        Json j;
        j.begin_array();
        for (const auto& c : channels) store::channel_json(j, c, false);
        j.end_array();
        print_line(j.text());
        return 0;
    }
    Table t({"ID", "NAME", "TYPE", "ENABLED", "PRIO", "WEIGHT", "CONC", "TIMEOUT", "GROUPS", "MODELS", "BASE_URL"});
    for (const auto& c : channels) {
        t.add({std::string(c.id()), std::string(c.name()), std::string(store::to_string(c.type())),
               c.enabled() ? "yes" : "no", std::to_string(c.priority()), std::to_string(c.weight()),
               limit_text(c.max_concurrency()), timeout_text(c),
               std::string(c.groups().text()), std::string(c.models().text()), std::string(c.base_url())});
    }
    t.print();
    return 0;
}

int channel_show(const Args& args) {
    auto env = open_store(args);
    return show_channel(args, *env, args.positional[0], args.is_set("reveal"));
}

int channel_update(const Args& args) {
    if (!args.any_of(channel_flags(false))) {
        throw UsageError("channel update needs at least one flag to change: run ringrelay channel update --help");
    }
    store::ChannelPatch patch = channel_patch_from(args);
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    check(store::update_channel(*env, id, patch, now_unix_ms()));
    if (args.json()) return show_channel(args, *env, id, false);
    print_line(cat("updated channel ", id));
    return 0;
}

int set_enabled(const Args& args, bool enabled) {
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    check(store::set_channel_enabled(*env, id, enabled, now_unix_ms()));
    if (args.json()) return show_channel(args, *env, id, false);
    print_line(cat(enabled ? "enabled" : "disabled", " channel ", id));
    return 0;
}

int channel_enable(const Args& args) {
    return set_enabled(args, true);
}
int channel_disable(const Args& args) {
    return set_enabled(args, false);
}

int channel_remove(const Args& args) {
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    check(store::remove_channel(*env, id, now_unix_ms()));
    if (args.json()) {
        Json j;
        store::removed_json(j, "id", id);
        print_line(j.text());
    } else {
        print_line(cat("removed channel ", id));
    }
    return 0;
}

}  // namespace

const Area& channel_area() {
    static const Area area{
        "channel",
        "Manage the upstreams requests are relayed to.",
        {
            {"add", "", "add a channel", channel_flags(true), 0, channel_add},
            {"list", "", "list every channel (credentials hidden)", {}, 0, channel_list},
            {"show", "ID", "show one channel", {{"reveal", "", "print the upstream credential too"}}, 1, channel_show},
            {"update", "ID", "change any of a channel's settings", channel_flags(false), 1, channel_update},
            {"enable", "ID", "route requests to the channel again", {}, 1, channel_enable},
            {"disable", "ID", "stop routing requests to the channel", {}, 1, channel_disable},
            {"remove", "ID", "delete the channel", {}, 1, channel_remove},
        },
    };
    return area;
}

}  // namespace rr::cli

// ringrelay key ...: create, list, show, update, revoke, unrevoke, rotate.
#include "cli.hpp"

namespace rr::cli {
namespace {

std::vector<FlagSpec> key_flags(bool create) {
    return {
        {"name", "NAME", create ? "display name (required)" : "display name"},
        {"group", "GROUP", "channel group the key routes to (default default)"},
        {"models", "M1,M2", "models the key may use; empty = every model (default empty)"},
        {"max-concurrency", "N", "requests in flight at once, at least 1 (default 1)"},
        {"max-wait", "N", "requests that may wait for a free slot; 0 = refuse at once (default 0)"},
        {"rpm", "N", "requests per minute, 0 = unlimited (default 0)"},
        {"tpm", "N", "tokens per minute, 0 = unlimited (default 0)"},
        {"quota", "N", "total tokens, 0 = unlimited (default 0)"},
        {"expires", "WHEN", "lifetime (30d) or RFC 3339 time, or never (default never)"},
    };
}

store::KeyPatch key_patch_from(const Args& args, std::int64_t now_ms) {
    store::KeyPatch p;
    if (auto v = args.value("name")) {
        check_flag("name", store::validate_name("key name", *v));
        p.name = std::string(*v);
    }
    if (auto v = args.value("group")) {
        check_flag("group", store::validate_group(*v));
        p.group = std::string(*v);
    }
    if (auto v = args.value("models")) {
        std::vector<std::string> models;
        check_flag("models", store::parse_model_list(*v, models));
        p.models = std::move(models);
    }
    if (auto v = args.value("max-concurrency")) {
        p.max_concurrency = flag_u32("max-concurrency", *v);
        if (*p.max_concurrency == 0) throw UsageError("--max-concurrency: must be at least 1");
    }
    if (auto v = args.value("max-wait")) p.max_wait = flag_u32("max-wait", *v);
    if (auto v = args.value("rpm")) p.rpm = flag_u32("rpm", *v);
    if (auto v = args.value("tpm")) p.tpm = flag_u64("tpm", *v);
    if (auto v = args.value("quota")) p.quota = flag_u64("quota", *v);
    if (auto v = args.value("expires")) p.expires_at_ms = flag_expiry("expires", *v, now_ms);
    return p;
}

void key_text(const store::KeyView& k, const store::UsageView& u, std::int64_t now_ms) {
    Table t({"id", std::string(k.id())});
    t.add({"name", std::string(k.name())});
    t.add({"group", std::string(k.group())});
    t.add({"status", std::string(store::key_status(k, now_ms))});
    t.add({"models", list_text(k.models(), "* (every model)")});
    t.add({"max concurrency", std::to_string(k.max_concurrency())});
    t.add({"max wait", std::to_string(k.max_wait())});
    t.add({"rpm", limit_text(k.rpm())});
    t.add({"tpm", limit_text(k.tpm())});
    t.add({"quota", limit_text(k.quota())});
    t.add({"used", cat(std::to_string(u.requests()), " requests, ", std::to_string(u.tokens()), " tokens")});
    t.add({"created", time_or(k.created_at_ms(), "-")});
    t.add({"updated", time_or(k.updated_at_ms(), "-")});
    t.add({"expires", time_or(k.expires_at_ms(), "never")});
    if (k.revoked()) {
        std::string reason = k.revoke_reason().empty() ? std::string() : cat(" (", k.revoke_reason(), ")");
        t.add({"revoked", cat(time_or(k.revoked_at_ms(), "-"), reason)});
    }
    if (k.has_previous()) {
        std::string_view verb = now_ms < k.previous_grace_until_ms() ? "works until " : "stopped at ";
        t.add({"previous secret", cat(verb, format_rfc3339(k.previous_grace_until_ms()))});
    }
    t.print();
}

// Shows key `id` as it is now (after a change, for --json).
int show_key(const Args& args, store::Env& env, std::string_view id) {
    store::Reader reader(env);
    check(reader.renew());
    store::KeyView k = reader.key_by_id(id);
    if (!k.valid()) throw RuntimeError(cat("no key with id ", id, ": see ringrelay key list"));
    std::int64_t now = now_unix_ms();
    if (args.json()) {
        Json j;
        store::key_json(j, k, reader.usage(id), now);
        print_line(j.text());
    } else {
        key_text(k, reader.usage(id), now);
    }
    return 0;
}

int key_create(const Args& args) {
    std::int64_t now = now_unix_ms();
    if (!args.value("name")) throw UsageError("key create needs --name NAME");
    store::KeySpec spec;
    key_patch_from(args, now).apply_to(spec);
    check(store::validate_key_spec(spec));
    auto env = open_store(args);
    store::NewKey created;
    check(store::create_key(*env, spec, now, created));
    if (args.json()) {
        Json j;
        store::new_key_json(j, created.id, spec.name, created.secret);
        print_line(j.text());
    } else {
        print_line(cat("created key ", created.id, " (", spec.name, ")"));
        print_line(cat("secret: ", created.secret));
        print_line("Store the secret now: it is not shown again (only its SHA-256 is kept).");
    }
    return 0;
}

int key_list(const Args& args) {
    auto env = open_store(args);
    store::Reader reader(*env);
    check(reader.renew());
    const std::vector<store::KeyView> keys = store::keys_in_list_order(reader);
    std::int64_t now = now_unix_ms();
    if (args.json()) {
        Json j;
        j.begin_array();
        for (const auto& k : keys) store::key_json(j, k, reader.usage(k.id()), now);
        j.end_array();
        print_line(j.text());
        return 0;
    }
    Table t({"ID", "NAME", "GROUP", "STATUS", "CONC", "WAIT", "RPM", "TPM", "QUOTA", "USED", "EXPIRES", "MODELS"});
    for (const auto& k : keys) {
        t.add({std::string(k.id()), std::string(k.name()), std::string(k.group()), std::string(store::key_status(k, now)),
               std::to_string(k.max_concurrency()), std::to_string(k.max_wait()), limit_text(k.rpm()),
               limit_text(k.tpm()), limit_text(k.quota()), std::to_string(reader.usage(k.id()).tokens()),
               time_or(k.expires_at_ms(), "never"), list_text(k.models(), "*")});
    }
    t.print();
    return 0;
}

int key_show(const Args& args) {
    auto env = open_store(args);
    return show_key(args, *env, args.positional[0]);
}

int key_update(const Args& args) {
    if (!args.any_of(key_flags(false)))
        throw UsageError("key update needs at least one flag to change: run ringrelay key update --help");
    store::KeyPatch patch = key_patch_from(args, now_unix_ms());
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    check(store::update_key(*env, id, patch, now_unix_ms()));
    if (args.json()) return show_key(args, *env, id);
    print_line(cat("updated key ", id));
    return 0;
}

int key_revoke(const Args& args) {
    std::string_view reason = args.value("reason").value_or("");
    check_flag("reason", store::validate_text("revoke reason", reason));
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    check(store::revoke_key(*env, id, reason, now_unix_ms()));
    if (args.json()) return show_key(args, *env, id);
    print_line(cat("revoked key ", id, "; its next request is refused"));
    return 0;
}

int key_unrevoke(const Args& args) {
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    check(store::unrevoke_key(*env, id, now_unix_ms()));
    if (args.json()) return show_key(args, *env, id);
    print_line(cat("unrevoked key ", id));
    return 0;
}

int key_rotate(const Args& args) {
    std::int64_t grace = 24LL * 3600 * 1000;
    if (auto v = args.value("grace")) grace = flag_duration_ms("grace", *v);
    if (grace > 365LL * 24 * 3600 * 1000) throw UsageError("--grace: must be at most 365d");
    auto env = open_store(args);
    const std::string& id = args.positional[0];
    std::int64_t now = now_unix_ms();
    std::string secret;
    check(store::rotate_key(*env, id, grace, now, secret));
    if (args.json()) {
        Json j;
        store::rotated_key_json(j, id, secret, now + grace);
        print_line(j.text());
    } else {
        print_line(cat("rotated key ", id, "; the previous secret works until ", format_rfc3339(now + grace)));
        print_line(cat("secret: ", secret));
        print_line("Store the secret now: it is not shown again (only its SHA-256 is kept).");
    }
    return 0;
}

}  // namespace

const Area& key_area() {
    static const Area area{
        "key",
        "Manage the keys clients present (Authorization: Bearer rr-... or x-api-key).",
        {
            {"create", "", "create a key and print its secret once", key_flags(true), 0, key_create},
            {"list", "", "list every key", {}, 0, key_list},
            {"show", "ID", "show one key", {}, 1, key_show},
            {"update", "ID", "change a key's name, group, models, limits or expiry", key_flags(false), 1, key_update},
            {"revoke",
             "ID",
             "refuse the key from its next request on",
             {{"reason", "TEXT", "why, for the record"}},
             1,
             key_revoke},
            {"unrevoke", "ID", "accept a revoked key again", {}, 1, key_unrevoke},
            {"rotate",
             "ID",
             "give the key a new secret; the old one works until the grace ends",
             {{"grace", "DURATION", "how long the old secret keeps working (default 24h)"}},
             1,
             key_rotate},
        },
    };
    return area;
}

}  // namespace rr::cli

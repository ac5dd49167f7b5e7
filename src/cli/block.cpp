// ringrelay block ...: add, list, remove.
#include "cli.hpp"

namespace rr::cli {
namespace {

IpPrefix prefix_operand(std::string_view text) {
    auto p = parse_ip_prefix(text);
    if (!p) {
        throw UsageError(
            cat("\"", text, "\" is not an IP address or prefix: use e.g. 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32"));
    }
    return *p;
}

int block_add(const Args& args) {
    std::int64_t now = now_unix_ms();
    IpPrefix prefix = prefix_operand(args.positional[0]);
    std::int64_t expires = now + 24LL * 3600 * 1000;
    if (auto v = args.value("ttl")) {
        if (*v == "never") {
            expires = 0;
        } else {
            std::int64_t ttl = flag_duration_ms("ttl", *v);
            if (ttl <= 0) throw UsageError("--ttl: must be positive; use --ttl never for a block that does not expire");
            if (ttl > std::numeric_limits<std::int64_t>::max() - now) throw UsageError("--ttl: too long");
            expires = now + ttl;
        }
    }
    std::string_view reason = args.value("reason").value_or("");
    check_flag("reason", store::validate_text("block reason", reason));
    auto env = open_store(args);
    check(store::add_block(*env, prefix, reason, expires, now));
    if (args.json()) {
        Json j;
        store::new_block_json(j, prefix, reason, expires);
        print_line(j.text());
    } else {
        print_line(cat("blocked ", format_ip_prefix(prefix), " until ", time_or(expires, "removed")));
    }
    return 0;
}

int block_list(const Args& args) {
    auto env = open_store(args);
    store::Reader reader(*env);
    check(reader.renew());
    std::int64_t now = now_unix_ms();
    if (args.json()) {
        Json j;
        j.begin_array();
        reader.for_each_block([&](const store::BlockView& b) { store::block_json(j, b, now); });
        j.end_array();
        print_line(j.text());
        return 0;
    }
    Table t({"PREFIX", "STATUS", "EXPIRES", "CREATED", "REASON"});
    reader.for_each_block([&](const store::BlockView& b) {
        t.add({format_ip_prefix(b.prefix()), b.expired_at(now) ? "expired" : "active",
               time_or(b.expires_at_ms(), "never"), time_or(b.created_at_ms(), "-"), std::string(b.reason())});
    });
    t.print();
    return 0;
}

int block_remove(const Args& args) {
    IpPrefix prefix = prefix_operand(args.positional[0]);
    auto env = open_store(args);
    check(store::remove_block(*env, prefix, now_unix_ms()));
    if (args.json()) {
        Json j;
        store::removed_json(j, "prefix", format_ip_prefix(prefix));
        print_line(j.text());
    } else {
        print_line(cat("unblocked ", format_ip_prefix(prefix)));
    }
    return 0;
}

}  // namespace

const Area& block_area() {
    static const Area area{
        "block",
        "Refuse clients by address (403 ip_blocked) from their next request on.",
        {
            {"add",
             "IP[/PREFIX]",
             "block an address or prefix (adding it again replaces it)",
             {{"ttl", "DURATION", "how long the block lasts, or never (default 24h)"},
              {"reason", "TEXT", "why, for the record"}},
             1,
             block_add},
            {"list", "", "list every block, expired ones included", {}, 0, block_list},
            {"remove", "IP[/PREFIX]", "lift the block with exactly this prefix", {}, 1, block_remove},
        },
    };
    return area;
}

}  // namespace rr::cli

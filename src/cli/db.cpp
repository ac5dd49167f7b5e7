// ringrelay db ...: backup, stats.
#include "cli.hpp"

namespace rr::cli {
namespace {

std::string mib(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

int db_backup(const Args& args) {
    const std::string& dest = args.positional[0];
    if (dest.empty()) throw UsageError("db backup needs a PATH: a new or empty directory");
    auto env = open_store(args);
    check(env->backup(dest));
    if (args.json()) {
        Json j;
        j.begin_object().key("backup").str(dest).key("file").str(cat(dest, "/data.mdb")).end_object();
        print_line(j.text());
    } else {
        print_line(cat("backed up ", env->dir(), " to ", dest, "/data.mdb (use it with --data ", dest, ")"));
    }
    return 0;
}

int db_stats(const Args& args) {
    auto env = open_store(args);
    store::Stats st;
    check(env->stats(st));
    if (args.json()) {
        Json j;
        j.begin_object();
        j.key("data_dir").str(env->dir());
        j.key("schema_version").num(st.schema_version);
        j.key("map_size").num(st.map_size);
        j.key("map_used").num(st.map_used);
        j.key("page_size").num(st.page_size);
        j.key("readers_used").num(st.readers_used);
        j.key("max_readers").num(st.max_readers);
        j.key("entries").begin_object();
        for (std::size_t i = 0; i < store::kDbCount; ++i)
            j.key(store::db_name(static_cast<store::Db>(i))).num(st.entries[i]);
        j.end_object();
        j.end_object();
        print_line(j.text());
        return 0;
    }
    Table t({"data dir", env->dir()});
    t.add({"schema version", std::to_string(st.schema_version)});
    std::uint64_t percent = st.map_size == 0 ? 0 : st.map_used * 100 / st.map_size;
    t.add({"map size", mib(st.map_size)});
    t.add({"map used", cat(mib(st.map_used), " (", std::to_string(percent), "%)")});
    t.add({"page size", std::to_string(st.page_size)});
    t.add({"readers", cat(std::to_string(st.readers_used), " of ", std::to_string(st.max_readers))});
    for (std::size_t i = 0; i < store::kDbCount; ++i) {
        t.add({cat("entries ", store::db_name(static_cast<store::Db>(i))), std::to_string(st.entries[i])});
    }
    t.print();
    return 0;
}

}  // namespace

const Area& db_area() {
    static const Area area{
        "db",
        "Back up the data directory and look at its numbers.",
        {
            {"backup",
             "PATH",
             "copy the data, compacted and consistent, into directory PATH (works while serve runs)",
             {},
             1,
             db_backup},
            {"stats", "", "entries per database, map size and use, schema version", {}, 0, db_stats},
        },
    };
    return area;
}

}  // namespace rr::cli

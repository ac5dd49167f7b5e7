// POST /admin/backup: a hot, consistent, compacted copy of the data (Env::backup,
// mdb_env_copy2) into a new or empty directory, on the worker thread.
#include <sys/stat.h>

#include "api.hpp"
#include "ringrelay/gateway/gateway_shared.hpp"

namespace rr::admin {
namespace {

// The operator's mistakes get a 400 before the copy starts; Env::backup refuses
// them too, but only as an I/O error.
bool usable_destination(const std::string& path, std::string& why) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) why = cat("path: ", path, " is not a directory: name a new or empty directory");
        else if (::stat((path + "/data.mdb").c_str(), &st) == 0)
            why = cat("path: ", path, " already holds a data.mdb: name a new or empty directory");
        return why.empty();
    }
    const std::string parent = path.substr(0, path.find_last_of('/'));
    if (!parent.empty() && (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
        why = cat("path: the parent directory of ", path, " does not exist: create it first");
    return why.empty();
}

Reply back_up(store::Env& env, const std::string& path) {
    std::string why;
    if (!usable_destination(path, why)) return Reply::bad_request(why);
    if (store::Status s = env.backup(path); !s.ok()) return Reply::error(500, "backup_failed", s.message);
    const std::string file = path + "/data.mdb";
    struct stat st {};
    const std::uint64_t size = ::stat(file.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    store::JsonWriter j;
    j.begin_object().key("backup").str(path).key("file").str(file).key("size").num(size).end_object();
    return Reply::json(200, j.take());
}

}  // namespace

Action plan_backup(const Request& req, GatewayShared& gw) {
    std::string path;
    std::string error;
    if (!parse_backup(req.body, path, error)) return Action::reply(Reply::bad_request(error));
    store::Env& env = *gw.env;
    return Action::on_worker([&env, path] { return back_up(env, path); });
}

}  // namespace rr::admin

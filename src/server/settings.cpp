#include "ringrelay/server/settings.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "ringrelay/common.hpp"

namespace rr::server {
namespace {

enum class Kind { text, count, duration, size, mode, toggle, boolean, sessions };

// Joins the values of a repeated flag (or a config array); paths hold no newline.
constexpr char kListSeparator = '\n';

bool is_repeatable(std::string_view flag) { return flag == "tls-cert" || flag == "tls-key"; }

std::vector<std::string> split_list(const std::string& v) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= v.size()) {
        const std::size_t end = std::min(v.find(kListSeparator, at), v.size());
        out.push_back(v.substr(at, end - at));
        at = end + 1;
    }
    if (out.size() == 1 && out.front().empty()) out.clear();
    return out;
}

struct Knob {
    const char* name;  // flag name without "--"
    Kind kind;
    std::function<void(ServeSettings&, std::uint64_t, const std::string&)> set;
};

#define TEXT(field) [](ServeSettings& s, std::uint64_t, const std::string& v) { s.field = v; }
// A repeatable flag: its values arrive joined by '\n' (see kListSeparator); the
// first also goes to the single field.
#define LIST(first, all)                                                       \
    [](ServeSettings& s, std::uint64_t, const std::string& v) {                \
        s.all = split_list(v);                                                 \
        s.first = s.all.empty() ? std::string() : s.all.front();               \
    }
#define NUMBER(field) \
    [](ServeSettings& s, std::uint64_t n, const std::string&) { s.field = static_cast<decltype(s.field)>(n); }

const std::vector<Knob>& knobs() {
    static const std::vector<Knob> k = {
        {"listen", Kind::text, TEXT(listen)},
        {"admin-listen", Kind::text, TEXT(admin_listen)},
        {"admin-tls-cert", Kind::text, TEXT(admin_tls_cert)},
        {"admin-tls-key", Kind::text, TEXT(admin_tls_key)},
        {"admin-insecure", Kind::boolean, NUMBER(admin_insecure)},
        {"shards", Kind::count, NUMBER(shards)},
        {"mode", Kind::mode, [](ServeSettings& s, std::uint64_t n, const std::string&) {
             s.mode = n ? Mode::relay : Mode::gateway;
         }},
        {"upstream", Kind::text, TEXT(upstream)},
        {"log-file", Kind::text, TEXT(log_file)},
        {"log-level", Kind::text, TEXT(log_level)},
        {"tls-cert", Kind::text, LIST(tls_cert, tls_certs)},
        {"tls-key", Kind::text, LIST(tls_key, tls_keys)},
        {"upstream-ca", Kind::text, TEXT(upstream_ca)},
        {"data", Kind::text, TEXT(data_dir)},
        {"upstream-max-concurrent", Kind::count, NUMBER(upstream_max_concurrent)},
        {"upstream-max-queue", Kind::count, NUMBER(upstream_max_queue)},
        {"upstream-queue-timeout", Kind::duration, NUMBER(upstream_queue_timeout_ms)},
        {"upstream-timeout", Kind::duration, NUMBER(upstream_timeout_ms)},
        {"first-byte-timeout", Kind::duration, NUMBER(first_byte_timeout_ms)},
        {"stream-idle-timeout", Kind::duration, NUMBER(stream_idle_timeout_ms)},
        {"header-timeout", Kind::duration, NUMBER(header_timeout_ms)},
        {"keepalive-timeout", Kind::duration, NUMBER(keepalive_timeout_ms)},
        {"max-body", Kind::size, NUMBER(max_body)},
        {"retries", Kind::count, NUMBER(retries)},
        {"retry-non-idempotent", Kind::toggle, NUMBER(retry_non_idempotent)},
        {"count-tokens-exempt", Kind::toggle, NUMBER(count_tokens_exempt)},
        {"session-from", Kind::sessions, [](ServeSettings& s, std::uint64_t, const std::string& v) {
             std::string ignored;
             parse_session_sources(v, s.session_sources, ignored);  // apply() checked it
         }},
        {"drain-timeout", Kind::duration, NUMBER(drain_timeout_ms)},
        {"response-affinity-ttl", Kind::duration, NUMBER(response_affinity_ttl_ms)},
    };
    return k;
}
#undef TEXT
#undef LIST
#undef NUMBER

const Knob* find_knob(std::string_view name) {
    for (const Knob& k : knobs())
        if (name == k.name) return &k;
    return nullptr;
}

// Converts one textual value for knob k and stores it; false + error when invalid.
bool apply(const Knob& k, const std::string& value, const std::string& label, ServeSettings& s,
           std::string& error) {
    std::uint64_t number = 0;
    switch (k.kind) {
    case Kind::text:
        break;
    case Kind::count: {
        auto n = parse_u64(value);
        if (!n || *n > UINT32_MAX) {
            error = label + ": '" + value + "' is not a whole number";
            return false;
        }
        number = *n;
        break;
    }
    case Kind::duration: {
        auto d = parse_duration(value);
        if (!d) {
            error = label + ": '" + value + "' is not a duration (like 500ms, 30s, 5m, 24h)";
            return false;
        }
        number = static_cast<std::uint64_t>(d->count());
        break;
    }
    case Kind::size: {
        auto n = parse_size(value);
        if (!n) {
            error = label + ": '" + value + "' is not a size (like 8MiB, 512KiB)";
            return false;
        }
        number = *n;
        break;
    }
    case Kind::boolean:
        if (value == "true" || value == "1") {
            number = 1;
        } else if (value != "false" && value != "0") {
            error = label + ": '" + value + "' must be true or false";
            return false;
        }
        break;
    case Kind::mode:
        if (value != "gateway" && value != "relay") {
            error = label + ": '" + value + "' must be gateway or relay";
            return false;
        }
        number = value == "relay";
        break;
    case Kind::sessions:
        if (std::vector<relay::SessionSource> sources; !relay::parse_session_sources(value, sources, error)) {
            error = label + ": " + error;
            return false;
        }
        break;
    case Kind::toggle:
        if (value == "true" || value == "on" || value == "1") {
            number = 1;
        } else if (value != "false" && value != "off" && value != "0") {
            error = label + ": '" + value + "' must be true or false";
            return false;
        }
        break;
    }
    k.set(s, number, value);
    return true;
}

std::string env_name(std::string_view flag) {
    std::string n = "RINGRELAY_";
    for (char c : flag) n += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
}

// Reads the config file into name -> textual value (numbers as written).
bool read_config(const std::string& path, std::map<std::string, std::string>& out, std::string& error) {
    simdjson::padded_string json;
    if (simdjson::padded_string::load(path).get(json)) {
        error = "cannot read config file " + path;
        return false;
    }
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (parser.parse(json).get(obj)) {
        error = "config file " + path + " is not a JSON object";
        return false;
    }
    for (auto field : obj) {
        std::string name(field.key);
        for (char& c : name) if (c == '_') c = '-';
        if (!find_knob(name)) {
            error = "config file " + path + ": unknown setting '" + std::string(field.key) + "'";
            return false;
        }
        std::string_view sv;
        simdjson::dom::array list;
        if (is_repeatable(name) && !field.value.get(list)) {
            std::string joined;
            for (auto item : list) {
                if (item.get(sv)) {
                    error = "config file " + path + ": '" + name + "' must be a string or an array of strings";
                    return false;
                }
                if (!joined.empty()) joined += kListSeparator;
                joined += sv;
            }
            out[name] = joined;
        } else if (!field.value.get(sv)) {
            out[name] = std::string(sv);
        } else if (bool b = false; !field.value.get(b)) {
            out[name] = b ? "true" : "false";
        } else if (field.value.is_uint64() || field.value.is_int64()) {
            std::ostringstream os;
            os << field.value;
            out[name] = os.str();
        } else {
            error = "config file " + path + ": '" + name + "' must be a string, a number or a boolean";
            return false;
        }
    }
    return true;
}

}  // namespace

const char* serve_usage() {
    return "usage: ringrelay serve [--listen 0.0.0.0:8080] [--admin-listen 127.0.0.1:9090] [--shards N]\n"
           "                       [--mode gateway|relay] [--upstream URL] [--config FILE.json]\n"
           "                       [--admin-tls-cert F --admin-tls-key F] [--admin-insecure]\n"
           "                       [--log-file F] [--log-level info] [--tls-cert F --tls-key F]... [--data DIR]\n"
           "                       [--upstream-ca FILE]\n"
           "                       [--upstream-max-concurrent 64] [--upstream-max-queue 1024]\n"
           "                       [--upstream-queue-timeout 30s] [--upstream-timeout 30s]\n"
           "                       [--first-byte-timeout 0]\n"
           "                       [--stream-idle-timeout 120s] [--header-timeout 10s]\n"
           "                       [--keepalive-timeout 75s] [--max-body 8MiB] [--retries 2]\n"
           "                       [--retry-non-idempotent false] [--drain-timeout 30s]\n"
           "                       [--count-tokens-exempt true]\n"
           "                       [--session-from prompt_cache_key,metadata.user_id,header:session_id,header:x-session-id]\n"
           "                       [--response-affinity-ttl 30d]\n"
           "Every flag may also come from RINGRELAY_<FLAG> (e.g. RINGRELAY_UPSTREAM_MAX_CONCURRENT)\n"
           "or from the --config JSON file (keys are flag names); flags win over both.\n";
}

bool resolve_settings(int argc, char** argv, ServeSettings& out, std::string& error, bool& usage_error) {
    usage_error = true;
    std::map<std::string, std::string> flags;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (!a.starts_with("--")) {
            error = "serve: unexpected argument '" + std::string(a) + "'";
            return false;
        }
        a.remove_prefix(2);
        std::string name, value;
        if (auto eq = a.find('='); eq != std::string_view::npos) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
        } else if (const Knob* k = find_knob(a); k != nullptr && k->kind == Kind::boolean) {
            name = a;  // a switch: present means true (--name=false turns it off)
            value = "true";
        } else {
            name = a;
            if (i + 1 >= argc) {
                error = "serve: --" + name + " needs a value";
                return false;
            }
            value = argv[++i];
        }
        if (name != "config" && !find_knob(name)) {
            error = "serve: unknown flag --" + name + " (see ringrelay serve --help)";
            return false;
        }
        if (is_repeatable(name) && flags.count(name)) flags[name] += kListSeparator + value;
        else flags[name] = value;
    }
    std::string config_path = flags.count("config") ? flags["config"] : "";
    if (config_path.empty())
        if (const char* e = std::getenv("RINGRELAY_CONFIG")) config_path = e;
    std::map<std::string, std::string> file;
    if (!config_path.empty() && !read_config(config_path, file, error)) {
        usage_error = false;
        return false;
    }
    out = ServeSettings{};
    out.config_file = config_path;
    if (const char* d = std::getenv("RINGRELAY_DATA")) out.data_dir = d;
    for (const Knob& k : knobs()) {
        const std::string env = env_name(k.name);
        if (auto f = flags.find(k.name); f != flags.end()) {
            if (!apply(k, f->second, "serve: --" + std::string(k.name), out, error)) return false;
        } else if (const char* e = std::getenv(env.c_str())) {
            if (!apply(k, e, "serve: environment " + env, out, error)) return false;
        } else if (auto c = file.find(k.name); c != file.end()) {
            if (!apply(k, c->second, "serve: config " + config_path + " '" + k.name + "'", out, error)) return false;
        }
    }
    if (out.data_dir.empty()) out.data_dir = "./data";
    if (out.mode == Mode::relay && out.upstream.empty()) {
        error = "serve: --mode relay needs --upstream http://HOST:PORT";
        return false;
    }
    if (out.upstream_max_concurrent == 0) {
        error = "serve: --upstream-max-concurrent must be at least 1";
        return false;
    }
    if (out.tls_certs.size() != out.tls_keys.size()) {
        error = out.tls_certs.size() <= 1 && out.tls_keys.size() <= 1
                    ? "serve: --tls-cert and --tls-key go together"
                    : "serve: --tls-cert and --tls-key go together in pairs (" +
                          std::to_string(out.tls_certs.size()) + " certificates, " +
                          std::to_string(out.tls_keys.size()) + " keys)";
        return false;
    }
    for (std::size_t i = 0; i < out.tls_certs.size(); ++i)
        if (out.tls_certs[i].empty() || out.tls_keys[i].empty()) {
            error = "serve: --tls-cert and --tls-key go together";
            return false;
        }
    if (out.admin_tls_cert.empty() != out.admin_tls_key.empty()) {
        error = "serve: --admin-tls-cert and --admin-tls-key go together";
        return false;
    }
    return true;
}

}  // namespace rr::server

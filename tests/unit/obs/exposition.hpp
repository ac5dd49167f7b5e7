// A strict reader of the Prometheus text format 0.0.4, for the metrics tests: every
// line must be a HELP, a TYPE or a sample of a family declared before it, and every
// histogram series must be cumulative and end in +Inf == _count.
#pragma once

#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rr::obs::test {

using Labels = std::map<std::string, std::string>;

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

struct Exposition {
    std::map<std::string, std::string> types;  // family -> counter | gauge | histogram
    std::set<std::string> helps;
    std::vector<Sample> samples;
    std::map<std::pair<std::string, Labels>, double> index;  // (name, labels) -> value
    std::vector<std::string> errors;  // empty when the text is well formed

    // The value of the sample (name, labels exactly), or -1 when absent.
    double value(std::string_view name, const Labels& labels = {}) const {
        auto it = index.find({std::string(name), labels});
        return it == index.end() ? -1 : it->second;
    }
    std::size_t count(std::string_view name) const {
        std::size_t n = 0;
        for (const Sample& s : samples) n += s.name == name ? 1 : 0;
        return n;
    }
};

namespace detail {

inline bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

inline bool parse_name(std::string_view& s, std::string& out) {
    std::size_t i = 0;
    while (i < s.size() && is_name_char(s[i], i == 0)) ++i;
    if (i == 0) return false;
    out.assign(s.substr(0, i));
    s.remove_prefix(i);
    return true;
}

// {a="x",b="y\"z"}: escapes \\ \" \n only.
inline bool parse_labels(std::string_view& s, Labels& out) {
    if (s.empty() || s.front() != '{') return true;
    s.remove_prefix(1);
    while (!s.empty() && s.front() != '}') {
        std::string key;
        if (!parse_name(s, key) || s.size() < 2 || s[0] != '=' || s[1] != '"') return false;
        s.remove_prefix(2);
        std::string value;
        for (;;) {
            if (s.empty()) return false;
            const char c = s.front();
            s.remove_prefix(1);
            if (c == '"') break;
            if (c == '\n') return false;
            if (c != '\\') {
                value += c;
                continue;
            }
            if (s.empty()) return false;
            const char e = s.front();
            s.remove_prefix(1);
            if (e == '\\') value += '\\';
            else if (e == '"') value += '"';
            else if (e == 'n') value += '\n';
            else return false;
        }
        if (!out.emplace(key, value).second) return false;
        if (!s.empty() && s.front() == ',') s.remove_prefix(1);
    }
    if (s.empty()) return false;
    s.remove_prefix(1);
    return true;
}

inline bool parse_value(std::string_view s, double& out) {
    if (s == "+Inf") out = std::numeric_limits<double>::infinity();
    else if (s == "-Inf") out = -std::numeric_limits<double>::infinity();
    else if (s == "NaN") out = std::numeric_limits<double>::quiet_NaN();
    else {
        std::string text(s);
        char* end = nullptr;
        out = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size()) return false;
    }
    return true;
}

inline std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            std::string base = name.substr(0, name.size() - suffix.size());
            auto it = types.find(base);
            if (it != types.end() && it->second == "histogram") return base;
        }
    }
    return name;
}

}  // namespace detail

inline Exposition parse_exposition(std::string_view text) {
    Exposition e;
    if (text.empty() || text.back() != '\n') e.errors.push_back("text does not end with a newline");
    std::string current_family;
    std::set<std::string> closed_families;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++line_no;
        const std::string where = "line " + std::to_string(line_no) + ": " + std::string(line);
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
            const bool help = line[2] == 'H';
            std::string_view rest = line.substr(7);
            std::string name;
            if (!detail::parse_name(rest, name) || rest.empty() || rest.front() != ' ') {
                e.errors.push_back("bad comment, " + where);
                continue;
            }
            rest.remove_prefix(1);
            if (name != current_family) {
                if (closed_families.count(name)) e.errors.push_back("family declared twice, " + where);
                if (!current_family.empty()) closed_families.insert(current_family);
                current_family = name;
            }
            if (help) {
                if (!e.helps.insert(name).second) e.errors.push_back("second HELP, " + where);
            } else {
                if (rest != "counter" && rest != "gauge" && rest != "histogram")
                    e.errors.push_back("unknown TYPE, " + where);
                if (!e.types.emplace(name, std::string(rest)).second) e.errors.push_back("second TYPE, " + where);
            }
            continue;
        }
        if (line.empty() || line.front() == '#') {
            e.errors.push_back("neither HELP, TYPE nor sample, " + where);
            continue;
        }
        Sample s;
        std::string_view rest = line;
        if (!detail::parse_name(rest, s.name) || !detail::parse_labels(rest, s.labels) || rest.empty() ||
            rest.front() != ' ' || !detail::parse_value(rest.substr(1), s.value)) {
            e.errors.push_back("bad sample, " + where);
            continue;
        }
        const std::string family = detail::family_of(s.name, e.types);
        if (family != current_family || !e.types.count(family) || !e.helps.count(family))
            e.errors.push_back("sample outside its declared family, " + where);
        if (!e.index.emplace(std::make_pair(s.name, s.labels), s.value).second)
            e.errors.push_back("duplicate series, " + where);
        e.samples.push_back(std::move(s));
    }
    return e;
}

// Every histogram series: le strictly increasing, counts non-decreasing, last le
// +Inf, _count == +Inf bucket, _sum present. Returns the problems found.
inline std::vector<std::string> check_histograms(const Exposition& e) {
    std::vector<std::string> problems;
    for (const auto& [family, type] : e.types) {
        if (type != "histogram") continue;
        std::map<Labels, std::vector<std::pair<std::string, double>>> series;
        for (const Sample& s : e.samples) {
            if (s.name != family + "_bucket") continue;
            Labels base = s.labels;
            auto le = base.find("le");
            if (le == base.end()) {
                problems.push_back(family + ": bucket without le");
                continue;
            }
            const std::string bound = le->second;
            base.erase(le);
            series[base].emplace_back(bound, s.value);
        }
        for (const auto& [labels, buckets] : series) {
            double last_bound = -1, last_count = -1;
            for (const auto& [bound, count] : buckets) {
                double b = 0;
                if (!detail::parse_value(bound, b) || b <= last_bound) problems.push_back(family + ": le not increasing");
                if (count < last_count) problems.push_back(family + ": buckets not cumulative");
                last_bound = b;
                last_count = count;
            }
            if (buckets.empty() || buckets.back().first != "+Inf") problems.push_back(family + ": no +Inf bucket");
            if (e.value(family + "_count", labels) != last_count) problems.push_back(family + ": _count != +Inf bucket");
            if (e.value(family + "_sum", labels) < 0) problems.push_back(family + ": no _sum");
        }
    }
    return problems;
}

}  // namespace rr::obs::test

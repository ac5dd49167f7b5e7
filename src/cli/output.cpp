// JSON and aligned-table output.
#include <cstdio>

#include "cli.hpp"

namespace rr::cli {
namespace {

// Display width: UTF-8 continuation bytes take no column.
std::size_t columns(std::string_view s) {
    std::size_t n = 0;
    for (char c : s) {
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    }
    return n;
}

}  // namespace

void Json::separate() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!has_items_.empty()) {
        if (has_items_.back()) out_ += ',';
        has_items_.back() = true;
    }
}

Json& Json::begin_object() {
    separate();
    out_ += '{';
    has_items_.push_back(false);
    return *this;
}

Json& Json::end_object() {
    out_ += '}';
    has_items_.pop_back();
    return *this;
}

Json& Json::begin_array() {
    separate();
    out_ += '[';
    has_items_.push_back(false);
    return *this;
}

Json& Json::end_array() {
    out_ += ']';
    has_items_.pop_back();
    return *this;
}

Json& Json::key(std::string_view k) {
    str(k);
    out_ += ':';
    after_key_ = true;
    return *this;
}

Json& Json::str(std::string_view v) {
    separate();
    out_ += '"';
    for (char c : v) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out_ += "\\\""; break;
            case '\\': out_ += "\\\\"; break;
            case '\n': out_ += "\\n"; break;
            case '\r': out_ += "\\r"; break;
            case '\t': out_ += "\\t"; break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out_ += buf;
                } else {
                    out_ += c;
                }
        }
    }
    out_ += '"';
    return *this;
}

Json& Json::num(std::uint64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
}

Json& Json::num_signed(std::int64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
}

Json& Json::boolean(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
}

Json& Json::null() {
    separate();
    out_ += "null";
    return *this;
}

Json& Json::time(std::int64_t unix_ms) {
    return unix_ms == 0 ? null() : str(format_rfc3339(unix_ms));
}

Json& Json::list(const store::ListView& items) {
    begin_array();
    for (std::string_view item : items) str(item);
    return end_array();
}

void Table::print() const {
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
        if (widths.size() < row.size()) widths.resize(row.size(), 0);
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], columns(row[i]));
    }
    for (const auto& row : rows_) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(widths[i] - columns(row[i]) + 2, ' ');
        }
        print_line(line);
    }
}

void print_line(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
}

std::string time_or(std::int64_t unix_ms, std::string_view zero_text) {
    // Whole seconds read better in a table; --json keeps the milliseconds.
    return unix_ms == 0 ? std::string(zero_text) : format_rfc3339(unix_ms - unix_ms % 1000);
}

std::string limit_text(std::uint64_t value) {
    return value == 0 ? "-" : std::to_string(value);
}

std::string list_text(const store::ListView& items, std::string_view empty_text) {
    return items.empty() ? std::string(empty_text) : std::string(items.text());
}

}  // namespace rr::cli

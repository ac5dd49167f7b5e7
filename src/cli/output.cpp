// Aligned-table output (JSON is store/json.cpp).
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

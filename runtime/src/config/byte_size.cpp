#include "llmq/runtime/byte_size.hpp"

#include <array>
#include <cctype>
#include <cstdio>

#include "decimal_with_unit.hpp"

namespace llmq {

namespace {

struct SizeUnit {
    std::string_view name;
    uint64_t multiplier;
};

constexpr std::array<SizeUnit, 10> kSizeUnits = {{
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
    {"kB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"TB", 1000ull * 1000 * 1000 * 1000},
    {"", 1},
}};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

Status not_a_size(std::string_view text, std::string_view why) {
    return invalid_argument(std::string("\"").append(text) + "\" is not a size: " + std::string(why) +
                            "; write bytes as an integer or a number with a unit (B, KiB, MiB, "
                            "GiB, TiB, kB, MB, GB, TB), e.g. \"16MiB\" or \"1.5GB\"");
}

}  // namespace

Expected<uint64_t> parse_byte_size(std::string_view text) {
    auto number = config_detail::split_decimal_with_unit(text);
    if (!number) return not_a_size(text, "expected a number followed by a unit");
    for (const SizeUnit& unit : kSizeUnits) {
        if (!equal_ignoring_case(unit.name, number->unit)) continue;
        auto bytes = config_detail::scale_decimal(*number, unit.multiplier, nullptr);
        if (!bytes) return not_a_size(text, "larger than 16 EiB");
        return *bytes;
    }
    return not_a_size(text, "unknown unit \"" + std::string(number->unit) + "\"");
}

std::string format_bytes(uint64_t bytes) {
    static constexpr std::array<const char*, 7> kNames = {"B",   "KiB", "MiB", "GiB",
                                                           "TiB", "PiB", "EiB"};
    if (bytes < 1024) return std::to_string(bytes) + " B";
    size_t unit = 0;
    double value = static_cast<double>(bytes);
    while (value >= 1024.0 && unit + 1 < kNames.size()) {
        value /= 1024.0;
        ++unit;
    }
    // 1023.96 KiB would print as "1024.0 KiB": move up a unit instead.
    if (value >= 1023.95 && unit + 1 < kNames.size()) {
        value /= 1024.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, kNames[unit]);
    return text;
}

std::string format_byte_size_exact(uint64_t bytes) {
    static constexpr std::array<const char*, 5> kNames = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t unit = 0;
    uint64_t value = bytes;
    while (value != 0 && value % 1024 == 0 && unit + 1 < kNames.size()) {
        value /= 1024;
        ++unit;
    }
    return std::to_string(value) + kNames[unit];
}

}  // namespace llmq

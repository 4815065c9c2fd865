#include "llmq/runtime/duration.hpp"

#include <array>

#include "decimal_with_unit.hpp"

namespace llmq {

namespace {

struct DurationUnit {
    std::string_view name;
    int64_t milliseconds;
};

// Largest first: format_duration picks the first that divides exactly.
constexpr std::array<DurationUnit, 4> kDurationUnits = {{
    {"h", 3600 * 1000},
    {"m", 60 * 1000},
    {"s", 1000},
    {"ms", 1},
}};

Status not_a_duration(std::string_view text, std::string_view why) {
    return invalid_argument(std::string("\"").append(text) + "\" is not a duration: " +
                            std::string(why) +
                            "; write a number with a unit (ms, s, m, h), e.g. \"250ms\" or \"5s\"");
}

}  // namespace

Expected<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto number = config_detail::split_decimal_with_unit(text);
    if (!number) return not_a_duration(text, "expected a number followed by a unit");
    if (number->unit.empty()) return not_a_duration(text, "the unit is missing");
    for (const DurationUnit& unit : kDurationUnits) {
        if (unit.name != number->unit) continue;
        bool exact = false;
        auto ms = config_detail::scale_decimal(*number, static_cast<uint64_t>(unit.milliseconds),
                                               &exact);
        if (!ms || *ms > static_cast<uint64_t>(INT64_MAX))
            return not_a_duration(text, "too long");
        if (!exact) return not_a_duration(text, "finer than a millisecond");
        return std::chrono::milliseconds(static_cast<int64_t>(*ms));
    }
    return not_a_duration(text, "unknown unit \"" + std::string(number->unit) + "\"");
}

std::string format_duration(std::chrono::milliseconds duration) {
    int64_t ms = duration.count();
    if (ms == 0) return "0s";
    for (const DurationUnit& unit : kDurationUnits) {
        if (ms % unit.milliseconds == 0)
            return std::to_string(ms / unit.milliseconds) + std::string(unit.name);
    }
    return std::to_string(ms) + "ms";
}

}  // namespace llmq

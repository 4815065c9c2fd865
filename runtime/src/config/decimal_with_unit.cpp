#include "decimal_with_unit.hpp"

namespace llmq::config_detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_space(char c) { return c == ' ' || c == '\t'; }

constexpr uint32_t kMaxDigits = 24;

}  // namespace

std::optional<DecimalWithUnit> split_decimal_with_unit(std::string_view text) {
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);

    DecimalWithUnit out;
    size_t i = 0;
    uint32_t digits = 0;
    bool any_integer_digit = false;
    for (; i < text.size() && is_digit(text[i]); ++i) {
        // Leading zeros carry no value and do not count against the digit budget.
        any_integer_digit = true;
        if (out.mantissa == 0 && text[i] == '0') continue;
        if (++digits > kMaxDigits) return std::nullopt;
        out.mantissa = out.mantissa * 10 + static_cast<unsigned>(text[i] - '0');
    }
    if (!any_integer_digit) return std::nullopt;
    if (i < text.size() && text[i] == '.') {
        ++i;
        bool any_fraction_digit = false;
        for (; i < text.size() && is_digit(text[i]); ++i) {
            any_fraction_digit = true;
            if (++digits > kMaxDigits) return std::nullopt;
            out.mantissa = out.mantissa * 10 + static_cast<unsigned>(text[i] - '0');
            ++out.fraction_digits;
        }
        if (!any_fraction_digit) return std::nullopt;
    }
    while (i < text.size() && is_space(text[i])) ++i;
    size_t unit_begin = i;
    while (i < text.size() && is_letter(text[i])) ++i;
    if (i != text.size()) return std::nullopt;
    out.unit = text.substr(unit_begin);
    return out;
}

std::optional<uint64_t> scale_decimal(const DecimalWithUnit& number, uint64_t multiplier,
                                      bool* exact) {
    unsigned __int128 divisor = 1;
    for (uint32_t i = 0; i < number.fraction_digits; ++i) divisor *= 10;
    // mantissa < 10^24 < 2^80 and multiplier < 2^50 (checked by callers' unit tables).
    unsigned __int128 product = number.mantissa * multiplier;
    unsigned __int128 value = product / divisor;
    if (exact) *exact = (product % divisor) == 0;
    if (value > UINT64_MAX) return std::nullopt;
    return static_cast<uint64_t>(value);
}

}  // namespace llmq::config_detail

// The shared grammar of sizes and durations: a decimal number, optional spaces, a unit word.
// Private to runtime/src/config.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace llmq::config_detail {

// "1.5 GiB" -> {mantissa 15, fraction_digits 1, unit "GiB"}. At most 24 digits in all, so
// mantissa x (a unit multiplier below 2^50) cannot overflow 128 bits.
struct DecimalWithUnit {
    unsigned __int128 mantissa = 0;
    uint32_t fraction_digits = 0;
    std::string_view unit;   // may be empty
};

// nullopt when text is not "<digits>[.<digits>][ ]*<letters>", ignoring surrounding spaces.
std::optional<DecimalWithUnit> split_decimal_with_unit(std::string_view text);

// mantissa x multiplier / 10^fraction_digits; *exact tells whether nothing was rounded away.
// nullopt when the result does not fit in 64 bits.
std::optional<uint64_t> scale_decimal(const DecimalWithUnit& number, uint64_t multiplier,
                                      bool* exact);

}  // namespace llmq::config_detail

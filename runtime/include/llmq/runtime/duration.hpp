// Durations as people write them in config files: "250ms", "5s", "1.5s", "2m", "1h".
//
// Units: ms, s, m (minutes), h. A space may stand between number and unit. The value must be
// a whole number of milliseconds ("1.0005s" is refused rather than rounded).
//
// Threads: pure functions, callable from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "llmq/runtime/status.hpp"

namespace llmq {

// "250ms" -> 250 ms, "1.5s" -> 1500 ms. invalid_argument naming the text when it is not a
// duration, has no unit, or overflows.
[[nodiscard]] Expected<std::chrono::milliseconds> parse_duration(std::string_view text);

// Exact, in the largest unit that divides it: "5s", "250ms", "2m", "1h", "0s". Negative
// durations are written with a leading '-' (which parse_duration refuses).
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace llmq

// Levenshtein distance, for "did you mean ..." in config errors and on the command line.
#pragma once

#include <cstddef>
#include <string_view>

namespace llmq {

// Insertions, deletions and substitutions that turn `a` into `b`.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace llmq

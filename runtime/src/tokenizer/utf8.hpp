// UTF-8 scanning for the tokenizer: one step of decoding with the Unicode "maximal subpart"
// rule for ill-formed input, and the sanitizer that turns arbitrary bytes into valid UTF-8.
//
// Internal to runtime/src/tokenizer. Pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmq::utf8 {

enum class StepKind {
    complete,   // a well-formed sequence of `length` bytes encoding `code_point`
    invalid,    // an ill-formed maximal subpart of `length` bytes (>= 1): one U+FFFD
    truncated,  // the input ends inside a sequence that could still become well-formed
};

struct Step {
    StepKind kind;
    size_t length;
    char32_t code_point;  // meaningful for complete only
};

// Decodes the sequence starting at bytes[0] (bytes must not be empty).
Step step(std::string_view bytes);

// Appends the UTF-8 encoding of a code point (<= U+10FFFF, not a surrogate).
void append(std::string& out, char32_t code_point);

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

// Appends `bytes` to `out` as valid UTF-8: each ill-formed maximal subpart becomes U+FFFD
// (the practice Unicode recommends and Python's errors="replace" follows).
// at_end false: a truncated sequence at the end is left unconsumed; at_end true: it becomes
// U+FFFD. Returns the number of bytes consumed.
size_t append_sanitized(std::string& out, std::string_view bytes, bool at_end);

// True when `bytes` is entirely well-formed UTF-8.
bool is_valid(std::string_view bytes);

}  // namespace llmq::utf8

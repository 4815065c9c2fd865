// The character classes the pre-tokenization patterns need: \p{L}, \p{N} and \s, and the
// finer categories of the Tekken and DeepSeek V3 patterns.
//
// Internal to runtime/src/tokenizer. Pure functions over a constant table, any thread.
#pragma once

namespace llmq {

enum class CharClass : unsigned char {
    letter,      // general category L*
    number,      // general category N*
    whitespace,  // the White_Space property (what \s matches)
    other,       // everything else, including bytes that are not valid UTF-8
};

CharClass char_class(char32_t code_point);

// The finer general categories the Tekken and DeepSeek V3 patterns name: the letter
// subcategories, marks (M*), punctuation (P*) and symbols (S*); none for anything else.
enum class Subcategory : unsigned char { none, Lu, Ll, Lt, Lm, Lo, M, P, S };

Subcategory subcategory(char32_t code_point);

}  // namespace llmq

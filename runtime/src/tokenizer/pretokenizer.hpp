// Pre-tokenization for byte-level BPE: splits text into the chunks that BPE merges never
// cross, as the regular expressions of the GPT-2 family do, written out by hand over
// Unicode character classes (no regex engine).
//
//   gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2:  as llama3 with \p{N} (single digits) in place of \p{N}{1,3}
//   tekken (Mistral Nemo, Pixtral; the pattern of its tokenizer.json, true Unicode categories):
//           [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|
//           [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|
//            ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   deepseek-v3: three patterns in turn, each splitting the chunks the one before left (text
//           between matches stays a chunk): \p{N}{1,3}, then [一-龥぀-ゟ゠-ヿ]+, then
//           [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
//            ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   deepseek-llm: in turn [\r\n], \s?[the cased letters (LC)]+, \s?[!-/:-~！-／：-～‘-‟　-。]+,
//           \s+$, [一-龥ࠀ-一가-퟿]+, \p{N}+
//   deepseek-coder: in turn [\r\n], \s?\p{L}+, \s?\p{P}+, [一-龥ࠀ-一가-퟿]+, \p{N}
//
// Bytes that are not valid UTF-8 count as one "other" character per ill-formed subpart, so
// every byte of the input lands in exactly one chunk.
//
// Internal to runtime/src/tokenizer. Pure functions, any thread.
#pragma once

#include <string_view>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

enum class PretokenizerStyle { gpt2, llama3, qwen2, tekken, deepseek_v3, deepseek_llm, deepseek_coder };

// The style for a `tokenizer.ggml.pre` value; unsupported for values llmq does not know.
[[nodiscard]] Expected<PretokenizerStyle> pretokenizer_style(std::string_view pre);

// Appends the chunks of `text` to `out`, in order; they concatenate to `text`.
// The views point into `text`.
void pretokenize(PretokenizerStyle style, std::string_view text,
                 std::vector<std::string_view>& out);

}  // namespace llmq

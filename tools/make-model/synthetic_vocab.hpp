// A small SentencePiece-style vocabulary for generated models, written as GGUF tokenizer
// metadata (tokenizer.ggml.model = "llama").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

// Smallest vocabulary synthesize_vocab accepts: <unk>, <s>, </s>, 256 byte tokens and "▁".
inline constexpr uint32_t min_synthetic_vocab = 3 + 256 + 1;

// Adds tokenizer.* keys describing `n_vocab` tokens to `writer`: id 0 <unk> (UNKNOWN),
// 1 <s> (BOS), 2 </s> (EOS), 3..258 the byte-fallback tokens <0x00>..<0xFF> (BYTE), then
// "▁", printable ASCII characters and letter strings with and without the leading "▁",
// scored so that earlier pieces are preferred. Deterministic: the same n, the same vocabulary.
// `control_tail` adds control tokens after the n_vocab (mllama's "<|image|>" at id n_vocab).
// invalid_argument when n_vocab < min_synthetic_vocab.
[[nodiscard]] Status add_synthetic_vocab(GgufWriter& writer, uint32_t n_vocab,
                                         const std::vector<std::string>& control_tail = {});

}  // namespace llmq

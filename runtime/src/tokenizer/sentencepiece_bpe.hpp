// SentencePiece BPE encoding ("llama" vocabularies), as sentencepiece's bpe_model does it:
// the text is split into characters, and the adjacent pair whose concatenation is a piece of
// the vocabulary with the highest score is merged first (ties: the leftmost), until no pair
// is a piece. What remains and is not a piece falls back to <0xXX> byte tokens, or to the
// unknown token when the vocabulary has none (consecutive unknown pieces give one unknown).
//
// Internal to runtime/src/tokenizer. Immutable after create, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llmq/runtime/status.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq {

class SentencePieceBpe {
public:
    // `vocab` must outlive the result (its token strings are indexed in place) and must
    // already be checked (sizes of tokens, scores and token_types agree).
    [[nodiscard]] static Expected<std::unique_ptr<SentencePieceBpe>> create(const TokenizerVocab& vocab);

    // Appends the ids of `text`. add_space_prefix: prepend ▁ (the caller decides: the first
    // fragment of a text and each fragment after a special token get it).
    void encode(std::string_view text, bool add_space_prefix, std::vector<int32_t>& out) const;

private:
    SentencePieceBpe() = default;

    const TokenizerVocab* vocab_ = nullptr;
    std::unordered_map<std::string_view, int32_t> pieces_;  // normal and user-defined tokens
    std::array<int32_t, 256> byte_ids_{};                  // <0xXX> tokens, -1 when absent
    bool byte_fallback_ = false;                            // any byte token present
};

}  // namespace llmq

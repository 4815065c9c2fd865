// Byte-level BPE encoding ("gpt2" vocabularies): the text is split by the pre-tokenizer, each
// chunk's bytes become characters of GPT-2's byte alphabet, and within a chunk the adjacent
// pair with the best (lowest) merge rank is merged first (ties: the leftmost), until no pair
// has a merge. A priority queue over a linked list of symbols keeps this O(n log n).
//
// Internal to runtime/src/tokenizer. Immutable after create, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "byte_level_alphabet.hpp"
#include "pretokenizer.hpp"
#include "llmq/runtime/status.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq {

class ByteLevelBpe {
public:
    // `vocab` must outlive the result and must already be checked (sizes agree). Errors:
    // corrupt for a merge that is not "left right", unsupported for an unknown pre-tokenizer.
    // Merges whose parts or result are not tokens are ignored (they could never apply).
    [[nodiscard]] static Expected<std::unique_ptr<ByteLevelBpe>> create(const TokenizerVocab& vocab);

    // Appends the ids of `text`.
    void encode(std::string_view text, std::vector<int32_t>& out) const;

    const ByteLevelAlphabet& alphabet() const { return alphabet_; }

private:
    ByteLevelBpe() = default;

    struct Merge {
        int32_t rank;
        int32_t result;
    };
    static uint64_t pair_key(int32_t left, int32_t right) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
               static_cast<uint32_t>(right);
    }
    void encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const;

    const TokenizerVocab* vocab_ = nullptr;
    PretokenizerStyle style_ = PretokenizerStyle::gpt2;
    // llama3-style vocabularies take a chunk that is itself a token as is, before any merge.
    bool whole_chunk_first_ = false;
    ByteLevelAlphabet alphabet_;
    std::unordered_map<std::string_view, int32_t> token_ids_;  // normal tokens by text
    std::array<int32_t, 256> byte_symbol_ids_{};               // -1 when absent
    std::unordered_map<uint64_t, Merge> merges_;               // by pair_key(left, right)
};

}  // namespace llmq

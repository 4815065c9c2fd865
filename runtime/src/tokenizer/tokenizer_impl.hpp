// Tokenizer::Impl: the tables a Tokenizer builds from its vocabulary at create().
//
// Internal to runtime/src/tokenizer. Immutable after create, any thread.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "byte_level_bpe.hpp"
#include "llmq/runtime/tokenizer.hpp"
#include "sentencepiece_bpe.hpp"

namespace llmq {

inline constexpr std::string_view space_symbol = "\xE2\x96\x81";  // U+2581 "▁"

struct Tokenizer::Impl {
    TokenizerVocab vocab;
    std::unordered_map<std::string_view, int32_t> by_text;  // the first id of each text
    std::vector<std::string> bytes;                         // token_bytes() of each id
    std::vector<bool> end_of_generation;
    std::vector<int32_t> end_of_generation_ids;
    // Control and user-defined tokens by their first byte, longest first, for parse_special.
    std::array<std::vector<int32_t>, 256> specials;
    std::unique_ptr<SentencePieceBpe> sentencepiece;  // "llama"
    std::unique_ptr<ByteLevelBpe> byte_level;        // "gpt2"

    TokenType type(int32_t id) const {
        return vocab.token_types.empty() ? TokenType::normal
                                         : static_cast<TokenType>(vocab.token_types[id]);
    }

    // The bytes of a valid id as decode() places them; `first`: no text token came before.
    // The space stripped is the one ▁ became in `bytes` (normal tokens spell spaces as ▁).
    std::string_view piece(int32_t id, bool first, bool skip_leading_space) const {
        std::string_view b = bytes[id];
        const TokenType t = type(id);
        const bool spelled_with_spaces =
            t == TokenType::normal || t == TokenType::undefined || t == TokenType::unused;
        if (first && skip_leading_space && sentencepiece && vocab.add_space_prefix &&
            spelled_with_spaces && vocab.tokens[id].starts_with(space_symbol)) {
            b.remove_prefix(1);
        }
        return b;
    }

    // Fill `bytes`, and the special-token and end-of-generation tables.
    void build_bytes();
    void build_specials();
    // The special token spelled at the start of `text` (not empty), longest first, or -1.
    int32_t special_at(std::string_view text) const;
};

}  // namespace llmq

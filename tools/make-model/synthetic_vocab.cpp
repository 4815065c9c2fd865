#include "synthetic_vocab.hpp"

#include <cstdio>
#include <string>
#include <unordered_set>
#include <vector>

namespace llmq {
namespace {

// SentencePiece token types as GGUF stores them (tokenizer.ggml.token_type).
constexpr int32_t type_normal = 1;
constexpr int32_t type_unknown = 2;
constexpr int32_t type_control = 3;
constexpr int32_t type_byte = 6;

const std::string space_marker = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

}  // namespace

Status add_synthetic_vocab(GgufWriter& writer, uint32_t n_vocab, const std::vector<std::string>& control_tail) {
    if (n_vocab < min_synthetic_vocab) {
        return invalid_argument("synthetic vocabulary: " + std::to_string(n_vocab) +
                                " tokens is too few; it needs at least " +
                                std::to_string(min_synthetic_vocab) +
                                " (3 special tokens, 256 byte tokens and the space piece)");
    }
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    tokens.reserve(n_vocab);
    std::unordered_set<std::string> seen;
    auto push = [&](std::string piece, float score, int32_t type) {
        if (tokens.size() >= n_vocab || !seen.insert(piece).second) return;
        tokens.push_back(std::move(piece));
        scores.push_back(score);
        types.push_back(type);
    };
    push("<unk>", 0.0f, type_unknown);
    push("<s>", 0.0f, type_control);
    push("</s>", 0.0f, type_control);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        push(name, 0.0f, type_byte);
    }
    // Normal pieces: score -rank, so earlier (shorter, commoner) pieces win merges.
    auto piece = [&](std::string s) { push(std::move(s), -static_cast<float>(tokens.size()), type_normal); };
    piece(space_marker);
    for (char c = 'a'; c <= 'z'; ++c) piece(space_marker + c);
    for (char c = 33; c < 127; ++c) piece(std::string(1, c));
    const char* words[] = {"the", "and", "of", "to", "in", "is", "that", "it", "for", "on",
                           "was", "with", "as", "at", "be", "this", "have", "from", "or", "by",
                           "hello", "world", "model", "token", "llm", "run", "test"};
    for (const char* w : words) piece(space_marker + w);
    for (const char* w : words) piece(w);
    // Then every lower-case string of length 2, 3, 4, ... with and without "▁", until full.
    std::string s;
    for (size_t len = 2; tokens.size() < n_vocab; ++len) {
        s.assign(len, 'a');
        while (tokens.size() < n_vocab) {
            piece(space_marker + s);
            piece(s);
            size_t i = len;  // odometer increment over 'a'..'z'
            while (i > 0 && s[i - 1] == 'z') s[--i] = 'a';
            if (i == 0) break;
            ++s[i - 1];
        }
    }

    for (const std::string& t : control_tail) {
        tokens.push_back(t);
        scores.push_back(0.0f);
        types.push_back(type_control);
    }
    writer.set("tokenizer.ggml.model", GgufValue::string("llama"));
    writer.set("tokenizer.ggml.pre", GgufValue::string("default"));
    writer.set("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
    writer.set("tokenizer.ggml.scores", GgufValue::array_f32(scores));
    writer.set("tokenizer.ggml.token_type", GgufValue::array_i32(types));
    writer.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
    writer.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
    writer.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
    writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
    writer.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
    return Status();
}

}  // namespace llmq

#include "byte_level_bpe.hpp"

#include <queue>
#include <string>

namespace llmq {

namespace {

struct Symbol {
    int32_t id;  // -1: a byte whose character is not in the vocabulary (never merges)
    int prev;
    int next;
};

struct Candidate {
    int32_t rank;
    int left;
    int32_t left_id;
    int32_t right_id;
    int32_t result;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct LowerPriority {
    bool operator()(const Candidate& a, const Candidate& b) const {
        if (a.rank != b.rank) return a.rank > b.rank;
        return a.left > b.left;
    }
};

}  // namespace

Expected<std::unique_ptr<ByteLevelBpe>> ByteLevelBpe::create(const TokenizerVocab& vocab) {
    auto style = pretokenizer_style(vocab.pre);
    if (!style) return style.status();

    std::unique_ptr<ByteLevelBpe> owner(new ByteLevelBpe());
    ByteLevelBpe& bpe = *owner;
    bpe.vocab_ = &vocab;
    bpe.style_ = *style;
    // llama.cpp's ignore_merges: the Llama 3, Qwen2 and Tekken families, not GPT-2's or DeepSeek's.
    bpe.whole_chunk_first_ = *style == PretokenizerStyle::llama3 || *style == PretokenizerStyle::qwen2 ||
                             *style == PretokenizerStyle::tekken;
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        const auto type = vocab.token_types.empty()
                              ? TokenType::normal
                              : static_cast<TokenType>(vocab.token_types[id]);
        if (type == TokenType::control || type == TokenType::user_defined ||
            type == TokenType::unused)
            continue;
        bpe.token_ids_.emplace(vocab.tokens[id], static_cast<int32_t>(id));
    }
    for (unsigned b = 0; b < 256; ++b) {
        const auto it = bpe.token_ids_.find(bpe.alphabet_.encode(static_cast<unsigned char>(b)));
        bpe.byte_symbol_ids_[b] = it == bpe.token_ids_.end() ? -1 : it->second;
    }

    std::string joined;
    bpe.merges_.reserve(vocab.merges.size());
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
        const std::string& merge = vocab.merges[rank];
        // Byte-level tokens never contain ' ' (it is 'Ġ'), so the first space separates.
        const size_t space = merge.find(' ', 1);
        if (space == std::string::npos || space + 1 >= merge.size()) {
            return corrupt("tokenizer: tokenizer.ggml.merges[" + std::to_string(rank) + "] = \"" +
                           merge + "\" is not two tokens separated by a space; the vocabulary is malformed");
        }
        const std::string_view left(merge.data(), space);
        const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
        joined.assign(left);
        joined.append(right);
        const auto l = bpe.token_ids_.find(left);
        const auto r = bpe.token_ids_.find(right);
        const auto j = bpe.token_ids_.find(joined);
        if (l == bpe.token_ids_.end() || r == bpe.token_ids_.end() || j == bpe.token_ids_.end()) {
            continue;
        }
        // The first (best-ranked) merge of a pair wins.
        bpe.merges_.emplace(pair_key(l->second, r->second),
                            Merge{static_cast<int32_t>(rank), j->second});
    }
    return owner;
}

void ByteLevelBpe::encode(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<std::string_view> chunks;
    pretokenize(style_, text, chunks);
    std::string mapped;
    for (std::string_view chunk : chunks) {
        if (whole_chunk_first_) {
            mapped.clear();
            alphabet_.encode(chunk, mapped);
            const auto it = token_ids_.find(mapped);
            if (it != token_ids_.end()) {
                out.push_back(it->second);
                continue;
            }
        }
        encode_chunk(chunk, out);
    }
}

void ByteLevelBpe::encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    symbols.reserve(chunk.size());
    for (size_t i = 0; i < chunk.size(); ++i) {
        const int index = static_cast<int>(i);
        symbols.push_back({byte_symbol_ids_[static_cast<unsigned char>(chunk[i])], index - 1, index + 1});
    }
    if (symbols.empty()) return;
    symbols.back().next = -1;

    std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> agenda;
    auto consider = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const int32_t left_id = symbols[left].id;
        const int32_t right_id = symbols[right].id;
        if (left_id < 0 || right_id < 0) return;
        const auto it = merges_.find(pair_key(left_id, right_id));
        if (it == merges_.end()) return;
        agenda.push({it->second.rank, left, left_id, right_id, it->second.result});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) consider(static_cast<int>(i), static_cast<int>(i + 1));

    while (!agenda.empty()) {
        const Candidate top = agenda.top();
        agenda.pop();
        Symbol& left = symbols[top.left];
        // A merge always makes a longer token, so a symbol never gets an id back that it had
        // before: matching ids mean the pair is still the one this candidate saw.
        if (left.id != top.left_id || left.next < 0) continue;
        Symbol& right = symbols[left.next];
        if (right.id != top.right_id) continue;
        left.id = top.result;
        right.id = -1;
        const int after = right.next;
        left.next = after;
        if (after >= 0) symbols[after].prev = top.left;
        consider(left.prev, top.left);
        consider(top.left, after);
    }

    for (int i = 0; i >= 0; i = symbols[i].next) {
        if (symbols[i].id >= 0) {
            out.push_back(symbols[i].id);
        } else if (vocab_->unk >= 0) {
            out.push_back(vocab_->unk);
        }
    }
}

}  // namespace llmq

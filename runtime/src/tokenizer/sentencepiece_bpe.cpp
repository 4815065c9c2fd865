#include "sentencepiece_bpe.hpp"

#include <queue>
#include <string>

#include "utf8.hpp"

namespace llmq {

namespace {

constexpr std::string_view space_symbol = "\xE2\x96\x81";  // U+2581 "▁"

// "<0x41>" → 0x41; -1 when the text is not of that form.
int parse_byte_token(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
    auto hex = [](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    const int hi = hex(text[3]);
    const int lo = hex(text[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// A run of the normalized text; symbols form a doubly linked list in text order, and a merged
// symbol keeps its left part's slot (the right part's length drops to 0).
struct Symbol {
    size_t start;
    size_t length;
    int prev;
    int next;
};

struct Candidate {
    float score;
    int left;
    int right;
    size_t length;  // of the merged piece: a candidate whose parts have changed is stale
};

// Highest score first; among equal scores the leftmost pair.
struct LowerPriority {
    bool operator()(const Candidate& a, const Candidate& b) const {
        if (a.score != b.score) return a.score < b.score;
        return a.left > b.left;
    }
};

}  // namespace

Expected<std::unique_ptr<SentencePieceBpe>> SentencePieceBpe::create(const TokenizerVocab& vocab) {
    std::unique_ptr<SentencePieceBpe> owner(new SentencePieceBpe());
    SentencePieceBpe& bpe = *owner;
    bpe.vocab_ = &vocab;
    bpe.byte_ids_.fill(-1);
    int byte_tokens = 0;
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        const auto type = vocab.token_types.empty()
                              ? TokenType::normal
                              : static_cast<TokenType>(vocab.token_types[id]);
        const std::string& text = vocab.tokens[id];
        if (type == TokenType::byte) {
            const int b = parse_byte_token(text);
            if (b < 0) {
                return corrupt("tokenizer: token " + std::to_string(id) + " has type byte but its text \"" +
                               text + "\" is not of the form <0xXX>; the vocabulary is malformed");
            }
            if (bpe.byte_ids_[b] < 0) {
                bpe.byte_ids_[b] = static_cast<int32_t>(id);
                ++byte_tokens;
            }
        } else if (type == TokenType::normal || type == TokenType::user_defined ||
                   type == TokenType::undefined) {
            if (!text.empty()) bpe.pieces_.emplace(text, static_cast<int32_t>(id));
        }
    }
    bpe.byte_fallback_ = byte_tokens > 0;
    return owner;
}

void SentencePieceBpe::encode(std::string_view text, bool add_space_prefix,
                              std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::string normalized;
    normalized.reserve(text.size() + text.size() / 2 + 3);
    if (add_space_prefix) normalized += space_symbol;
    for (char c : text) {
        if (c == ' ') {
            normalized += space_symbol;
        } else {
            normalized += c;
        }
    }

    std::vector<Symbol> symbols;
    symbols.reserve(normalized.size());
    for (size_t pos = 0; pos < normalized.size();) {
        const size_t length = utf8::step(std::string_view(normalized).substr(pos)).length;
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({pos, length, index - 1, index + 1});
        pos += length;
    }
    symbols.back().next = -1;

    const std::string_view norm(normalized);
    std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> agenda;
    auto consider = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const size_t length = symbols[left].length + symbols[right].length;
        const auto it = pieces_.find(norm.substr(symbols[left].start, length));
        if (it == pieces_.end()) return;
        agenda.push({vocab_->scores[it->second], left, right, length});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) consider(static_cast<int>(i), static_cast<int>(i + 1));

    while (!agenda.empty()) {
        const Candidate top = agenda.top();
        agenda.pop();
        Symbol& left = symbols[top.left];
        Symbol& right = symbols[top.right];
        // Lengths only grow, so unchanged lengths mean both parts are still what they were
        // and still adjacent.
        if (left.length == 0 || right.length == 0 || left.length + right.length != top.length) {
            continue;
        }
        left.length += right.length;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[right.next].prev = top.left;
        consider(left.prev, top.left);
        consider(top.left, left.next);
    }

    bool previous_unknown = false;
    for (int i = 0; i >= 0; i = symbols[i].next) {
        const std::string_view piece = norm.substr(symbols[i].start, symbols[i].length);
        const auto it = pieces_.find(piece);
        if (it != pieces_.end()) {
            out.push_back(it->second);
            previous_unknown = false;
        } else if (byte_fallback_) {
            for (char c : piece) {
                const int32_t id = byte_ids_[static_cast<unsigned char>(c)];
                if (id >= 0) {
                    out.push_back(id);
                } else if (vocab_->unk >= 0) {
                    out.push_back(vocab_->unk);
                }
            }
            previous_unknown = false;
        } else {
            if (!previous_unknown && vocab_->unk >= 0) out.push_back(vocab_->unk);
            previous_unknown = true;
        }
    }
}

}  // namespace llmq

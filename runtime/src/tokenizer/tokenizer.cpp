#include "llmq/runtime/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <unordered_map>

#include "tokenizer_impl.hpp"
#include "utf8.hpp"

namespace llmq {

namespace {

// sentencepiece renders the unknown token as " ⁇ " (U+2047).
constexpr std::string_view spm_unknown_surface = " \xE2\x81\x87 ";

// Texts of control/user-defined tokens that end a turn or a document in common vocabularies.
constexpr std::array<std::string_view, 9> end_of_generation_texts = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>",
    "<|end|>",    "<end_of_turn>", "<|return|>", "</s>",
};

const std::string empty_string;

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (true) {
        const size_t hit = text.find(from, pos);
        if (hit == std::string_view::npos) break;
        out.append(text.substr(pos, hit - pos));
        out.append(to);
        pos = hit + from.size();
    }
    out.append(text.substr(pos));
    return out;
}

Status check_vocab(const TokenizerVocab& v) {
    const std::string where = "tokenizer (model \"" + v.model + "\")";
    if (v.model != "llama" && v.model != "gpt2") {
        return unsupported("tokenizer: tokenizer.ggml.model = \"" + v.model +
                           "\" is not supported; llmq implements \"llama\" (SentencePiece) and "
                           "\"gpt2\" (byte-level BPE)");
    }
    if (v.tokens.empty()) {
        return invalid_argument(where + ": tokenizer.ggml.tokens is empty; the model file has no vocabulary");
    }
    if (v.tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        return invalid_argument(where + ": tokenizer.ggml.tokens has " + std::to_string(v.tokens.size()) +
                                " entries, more than token ids can address");
    }
    const std::string n = std::to_string(v.tokens.size());
    if (v.model == "llama" && v.scores.size() != v.tokens.size()) {
        return invalid_argument(where + ": tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
                                " entries but tokenizer.ggml.tokens has " + n +
                                "; SentencePiece vocabularies need one score per token");
    }
    if (v.model == "gpt2" && !v.scores.empty() && v.scores.size() != v.tokens.size()) {
        return invalid_argument(where + ": tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
                                " entries but tokenizer.ggml.tokens has " + n);
    }
    if (!v.token_types.empty() && v.token_types.size() != v.tokens.size()) {
        return invalid_argument(where + ": tokenizer.ggml.token_type has " +
                                std::to_string(v.token_types.size()) + " entries but tokenizer.ggml.tokens has " + n);
    }
    for (size_t i = 0; i < v.token_types.size(); ++i) {
        if (v.token_types[i] < 0 || v.token_types[i] > static_cast<int32_t>(TokenType::byte)) {
            return invalid_argument(where + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] = " +
                                    std::to_string(v.token_types[i]) + " is not a token type (0..6)");
        }
    }
    const std::pair<const char*, int32_t> ids[] = {
        {"bos_token_id", v.bos}, {"eos_token_id", v.eos}, {"unknown_token_id", v.unk},
        {"padding_token_id", v.pad}, {"eot_token_id", v.eot}, {"eom_token_id", v.eom}};
    for (const auto& [key, id] : ids) {
        if (id < -1 || id >= static_cast<int32_t>(v.tokens.size())) {
            return invalid_argument(where + ": tokenizer.ggml." + key + " = " + std::to_string(id) +
                                    " is outside the vocabulary of " + n + " tokens");
        }
    }
    for (size_t i = 0; i < v.eos_ids.size(); ++i) {
        if (v.eos_ids[i] < 0 || v.eos_ids[i] >= static_cast<int32_t>(v.tokens.size())) {
            return invalid_argument(where + ": tokenizer.ggml.eos_token_ids[" + std::to_string(i) +
                                    "] = " + std::to_string(v.eos_ids[i]) +
                                    " is outside the vocabulary of " + n + " tokens");
        }
    }
    return Status::ok_status();
}

}  // namespace

void Tokenizer::Impl::build_bytes() {
    bytes.resize(vocab.tokens.size());
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        const std::string& text = vocab.tokens[id];
        const TokenType t = type(static_cast<int32_t>(id));
        std::string& out = bytes[id];
        if (t == TokenType::control) continue;
        if (t == TokenType::user_defined) {
            out = text;
        } else if (sentencepiece) {
            if (t == TokenType::byte) {
                out.assign(1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
            } else if (t == TokenType::unknown) {
                out = spm_unknown_surface;
            } else {
                out = replace_all(text, space_symbol, " ");
            }
        } else {
            // Byte-level: each character of the alphabet is one byte; anything else (a
            // vocabulary may hold plain text tokens) stands for its own UTF-8.
            const ByteLevelAlphabet& alphabet = byte_level->alphabet();
            const std::string_view s(text);
            for (size_t pos = 0; pos < s.size();) {
                const utf8::Step step = utf8::step(s.substr(pos));
                std::optional<unsigned char> b;
                if (step.kind == utf8::StepKind::complete) b = alphabet.decode(step.code_point);
                if (b) {
                    out += static_cast<char>(*b);
                } else {
                    out.append(s.substr(pos, step.length));
                }
                pos += step.length;
            }
        }
    }
}


void Tokenizer::Impl::build_specials() {
    end_of_generation.assign(vocab.tokens.size(), false);
    auto mark_end = [&](int32_t id) {
        if (id >= 0 && !end_of_generation[id]) {
            end_of_generation[id] = true;
            end_of_generation_ids.push_back(id);
        }
    };
    mark_end(vocab.eos);
    mark_end(vocab.eot);
    mark_end(vocab.eom);
    for (int32_t id : vocab.eos_ids) mark_end(id);
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        const TokenType t = type(static_cast<int32_t>(id));
        const std::string& text = vocab.tokens[id];
        if ((t != TokenType::control && t != TokenType::user_defined) || text.empty()) continue;
        specials[static_cast<unsigned char>(text[0])].push_back(static_cast<int32_t>(id));
        if (std::find(end_of_generation_texts.begin(), end_of_generation_texts.end(), text) !=
            end_of_generation_texts.end()) {
            mark_end(static_cast<int32_t>(id));
        }
    }
    for (auto& list : specials) {
        std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
            return vocab.tokens[a].size() > vocab.tokens[b].size();
        });
    }
}


// The special token spelled at the start of `text`, longest first, or -1.
int32_t Tokenizer::Impl::special_at(std::string_view text) const {
    for (int32_t id : specials[static_cast<unsigned char>(text[0])]) {
        if (text.starts_with(vocab.tokens[id])) return id;
    }
    return -1;
}

Expected<std::unique_ptr<Tokenizer>> Tokenizer::create(TokenizerVocab vocab) {
    LLMQ_TRY(check_vocab(vocab));
    // The tables index the vocabulary's strings in place, so it gets its final address first.
    auto impl = std::make_unique<Impl>();
    impl->vocab = std::move(vocab);
    const TokenizerVocab& v = impl->vocab;
    if (v.model == "llama") {
        auto spm = SentencePieceBpe::create(v);
        if (!spm) return spm.status();
        impl->sentencepiece = std::move(*spm);
    } else {
        auto bpe = ByteLevelBpe::create(v);
        if (!bpe) return bpe.status();
        impl->byte_level = std::move(*bpe);
    }
    for (size_t id = 0; id < v.tokens.size(); ++id) {
        impl->by_text.emplace(v.tokens[id], static_cast<int32_t>(id));
    }
    impl->build_bytes();
    impl->build_specials();
    return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
    return encode_impl(text, add_special, parse_special, {});
}

std::vector<int32_t> Tokenizer::encode_marked(std::string_view text,
                                              std::span<const uint8_t> from_data) const {
    if (from_data.size() != text.size()) return encode(text, false, false);  // no markup known
    // An all-data prompt must not parse specials anywhere: a span of one entry per byte
    // keeps from_data non-empty whenever text is.
    return encode_impl(text, false, true, from_data);
}

// from_data: empty, or one entry per byte of text (non-zero: data, no specials there).
std::vector<int32_t> Tokenizer::encode_impl(std::string_view text, bool add_special, bool parse_special,
                                            std::span<const uint8_t> from_data) const {
    const Impl& m = *impl_;
    const TokenizerVocab& v = m.vocab;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);

    // SentencePiece's leading space goes before the first fragment of text and before each
    // fragment that follows a special token (as llama.cpp does, and as Hugging Face's
    // tokenizer does for text between special tokens).
    bool after_special = true;
    auto encode_fragment = [&](std::string_view fragment) {
        if (fragment.empty()) return;
        if (m.sentencepiece) {
            m.sentencepiece->encode(fragment, v.add_space_prefix && after_special, out);
        } else {
            m.byte_level->encode(fragment, out);
        }
        after_special = false;
    };

    if (!parse_special) {
        encode_fragment(text);
    } else {
        size_t fragment_start = 0;
        size_t pos = 0;
        while (pos < text.size()) {
            int32_t id = m.special_at(text.substr(pos));
            if (id >= 0 && !from_data.empty()) {
                const size_t n = v.tokens[id].size();
                if (std::any_of(from_data.begin() + pos, from_data.begin() + pos + n,
                                [](uint8_t data) { return data != 0; }))
                    id = -1;
            }
            if (id < 0) {
                ++pos;
                continue;
            }
            encode_fragment(text.substr(fragment_start, pos - fragment_start));
            out.push_back(id);
            after_special = true;
            pos += v.tokens[id].size();
            fragment_start = pos;
        }
        encode_fragment(text.substr(fragment_start));
    }

    if (add_special && v.add_eos && v.eos >= 0) out.push_back(v.eos);
    return out;
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
    return valid_id(id) ? impl_->bytes[id] : empty_string;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, DecodeOptions options) const {
    const Impl& m = *impl_;
    std::string raw;
    bool first = true;
    for (int32_t id : ids) {
        if (!valid_id(id)) continue;
        if (m.type(id) == TokenType::control) {
            if (options.render_special) raw += m.vocab.tokens[id];
            continue;
        }
        raw += m.piece(id, first, options.skip_leading_space);
        first = false;
    }
    std::string out;
    out.reserve(raw.size());
    utf8::append_sanitized(out, raw, true);
    return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->vocab.tokens.size()); }
int32_t Tokenizer::bos() const { return impl_->vocab.bos; }
int32_t Tokenizer::eos() const { return impl_->vocab.eos; }

bool Tokenizer::is_end_of_generation(int32_t id) const {
    return valid_id(id) && impl_->end_of_generation[id];
}

const std::vector<int32_t>& Tokenizer::end_of_generation_ids() const {
    return impl_->end_of_generation_ids;
}

bool Tokenizer::is_control(int32_t id) const {
    return valid_id(id) && impl_->type(id) == TokenType::control;
}

TokenType Tokenizer::token_type(int32_t id) const {
    return valid_id(id) ? impl_->type(id) : TokenType::undefined;
}

const std::string& Tokenizer::token_text(int32_t id) const {
    return valid_id(id) ? impl_->vocab.tokens[id] : empty_string;
}

int32_t Tokenizer::find_token(std::string_view text) const {
    const auto it = impl_->by_text.find(text);
    return it == impl_->by_text.end() ? -1 : it->second;
}

const TokenizerVocab& Tokenizer::vocab() const { return impl_->vocab; }

}  // namespace llmq

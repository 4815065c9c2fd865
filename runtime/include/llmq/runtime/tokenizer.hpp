// The tokenizer a model file carries: text to token ids and back.
//
// Two vocabulary models, as GGUF names them in `tokenizer.ggml.model`:
//   "llama"  SentencePiece BPE: the text gets a leading space when add_space_prefix, spaces
//            become U+2581 "▁", pieces merge by score (highest first), anything the vocabulary
//            lacks falls back to <0xXX> byte tokens (or to the unknown token without them).
//   "gpt2"   byte-level BPE: the text is split by the pre-tokenizer that `tokenizer.ggml.pre`
//            names ("default"/"gpt2"/"gpt-2", "llama3"/"llama-bpe"/"llama-v3"/"smaug-bpe",
//            "qwen2"), each byte becomes a printable character (GPT-2's byte alphabet), and
//            pieces merge in the order of `tokenizer.ggml.merges`.
//
// Control tokens (token type 3, e.g. <s>, <|eot_id|>) and user-defined tokens (type 4) are
// recognised in text only when encode() is asked to (parse_special); otherwise their text is
// tokenized like any other text.
//
// Ownership and threads: a Tokenizer owns a copy of its vocabulary and is immutable after
// create(); every const method may be called from any thread at the same time. A
// TokenStreamDecoder holds a reference to its Tokenizer (which must outlive it) and per-stream
// state: one decoder per generated stream, used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

class GgufFile;

// Token types as GGUF stores them in tokenizer.ggml.token_type (SentencePiece's numbering).
enum class TokenType : int32_t {
    undefined = 0,
    normal = 1,
    unknown = 2,
    control = 3,
    user_defined = 4,
    unused = 5,
    byte = 6,
};

// The vocabulary as the model file describes it. Ids are indices into `tokens`; -1 means
// "the file names none".
struct TokenizerVocab {
    std::string model;  // "llama" (SentencePiece) | "gpt2" (byte-level BPE)
    std::string pre;    // tokenizer.ggml.pre, "default" when absent
    std::vector<std::string> tokens;
    std::vector<float> scores;        // one per token ("llama": required; "gpt2": unused)
    std::vector<int32_t> token_types; // one per token (TokenType values); empty: all normal
    std::vector<std::string> merges;  // "gpt2": "left right", highest priority first
    int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
    int32_t eom = -1;                  // tokenizer.ggml.eom_token_id (<|eom_id|>)
    std::vector<int32_t> eos_ids;      // tokenizer.ggml.eos_token_ids: more ids that end generation
    bool add_bos = true;           // encode(add_special) prepends bos
    bool add_eos = false;          // encode(add_special) appends eos
    bool add_space_prefix = true;  // "llama": prepend ▁ to the text (and strip it on decode)
    std::string chat_template;     // tokenizer.chat_template (Jinja source), may be empty
};

// Reads tokenizer.ggml.* and tokenizer.chat_template from a GGUF file's metadata.
// tokenizer.ggml.eos_token_ids (an array, when present) lists further end-of-generation ids.
// Defaults when a key is absent: pre "default"; "llama": bos 1, eos 2, unk 0, add_bos true,
// add_space_prefix true; "gpt2": no bos/eos/unk, add_bos false, add_space_prefix false.
// An id stored as 0xFFFFFFFF means none. Errors: not_found for a missing
// tokenizer.ggml.model/tokens, corrupt for a key of the wrong type (naming file and key).
// The result is checked by Tokenizer::create, not here.
[[nodiscard]] Expected<TokenizerVocab> vocab_from_gguf(const GgufFile& file);

struct DecodeOptions {
    // "llama" with add_space_prefix: drop the space that the first text token's leading ▁
    // stands for (the one encode() added). Pass false when decoding a continuation of text
    // (tokens generated after a prompt), whose first space is real.
    bool skip_leading_space = true;
    // Write control tokens as their text (e.g. "<|eot_id|>") instead of nothing.
    bool render_special = false;
};

class Tokenizer {
public:
    // Checks the vocabulary (sizes of the per-token arrays, special ids in range, token types,
    // merges well-formed, model and pre-tokenizer known) and builds the lookup tables.
    // Errors: invalid_argument / corrupt naming the key and the entry, unsupported for a model
    // or pre-tokenizer llmq does not implement.
    [[nodiscard]] static Expected<std::unique_ptr<Tokenizer>> create(TokenizerVocab vocab);

    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // Token ids for `text` (any bytes; ill-formed UTF-8 is kept byte for byte where the
    // vocabulary can represent it). add_special: prepend bos / append eos as the vocabulary
    // asks (add_bos, add_eos). parse_special: text such as "<|eot_id|>" that spells a control
    // or user-defined token becomes that token. Never fails: a piece the vocabulary cannot
    // represent becomes the unknown token (or is dropped when there is none).
    std::vector<int32_t> encode(std::string_view text, bool add_special,
                                bool parse_special = false) const;

    // Token ids for a rendered chat prompt: `from_data` has one entry per byte of `text`,
    // non-zero where the byte came from message text. Control and user-defined tokens are
    // recognised only where every byte of their spelling is template markup; message text
    // is tokenized as with parse_special off. Adds no BOS/EOS (encode_chat_prompt does).
    std::vector<int32_t> encode_marked(std::string_view text, std::span<const uint8_t> from_data) const;

    // The raw bytes a token stands for: <0xXX> → that byte, SentencePiece ▁ → ' ', byte-level
    // characters → their bytes; "" for control tokens and for ids out of range. Bytes of one
    // token need not be valid UTF-8 on their own.
    const std::string& token_bytes(int32_t id) const;

    // Text for `ids` as valid UTF-8 (ill-formed byte sequences become U+FFFD). Ids out of
    // range contribute nothing.
    std::string decode(std::span<const int32_t> ids, DecodeOptions options = {}) const;

    int32_t vocab_size() const;
    int32_t bos() const;  // -1 when none
    int32_t eos() const;  // -1 when none
    bool valid_id(int32_t id) const { return id >= 0 && id < vocab_size(); }
    // Generation ends at this token: eos, eot, eom, every id of eos_ids, and
    // control/user-defined tokens such as
    // <|eot_id|>, <|eom_id|>, <|im_end|>, <|end_of_text|>, <|endoftext|>, <|end|>,
    // <end_of_turn>.
    bool is_end_of_generation(int32_t id) const;
    const std::vector<int32_t>& end_of_generation_ids() const;
    bool is_control(int32_t id) const;
    TokenType token_type(int32_t id) const;  // undefined for ids out of range
    // The token as the vocabulary spells it ("▁Hello", "Ġworld", "<0x0A>", "<s>"); "" out of
    // range.
    const std::string& token_text(int32_t id) const;
    // The id of a token spelled exactly `text`, or -1.
    int32_t find_token(std::string_view text) const;
    const TokenizerVocab& vocab() const;

    struct Impl;

private:
    friend class TokenStreamDecoder;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::vector<int32_t> encode_impl(std::string_view text, bool add_special, bool parse_special,
                                     std::span<const uint8_t> from_data) const;
    std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: push ids one by one as they are generated and get text pieces that
// are always complete, valid UTF-8. A multi-byte character split across tokens (byte fallback,
// byte-level BPE) is held back until it completes; an ill-formed sequence becomes U+FFFD as
// soon as it is known to be ill-formed. The pieces push() returns, followed by flush(),
// concatenate to tokenizer.decode(all ids, {skip_leading_space, render_special = false}).
class TokenStreamDecoder {
public:
    // skip_leading_space: as DecodeOptions; pass false when the stream continues a prompt.
    explicit TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_leading_space = true);

    // Text that became complete with this token (possibly empty). Ids out of range and
    // control tokens add nothing.
    std::string push(int32_t id);
    // The rest: bytes of an unfinished character become U+FFFD. The decoder is then back in
    // its initial state, ready for a new stream.
    std::string flush();

private:
    const Tokenizer& tokenizer_;
    bool skip_leading_space_;
    bool at_start_ = true;
    std::string pending_;  // at most 3 bytes: the start of an unfinished character
};

}  // namespace llmq

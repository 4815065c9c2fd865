#include <limits>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq {

namespace {

// A special token id: absent → fallback. GgufFile::open has refused a present one that is not
// a u32 naming a token of tokenizer.ggml.tokens (there is no "none" value: 2^32 - 1 is refused
// like any id past the vocabulary); create() checks the range again.
Expected<int32_t> read_token_id(const GgufFile& file, std::string_view key, int32_t fallback) {
    const GgufValue* v = file.find(key);
    if (!v) return fallback;
    const auto i = v->as_i64();
    if (!v->is_integer() || !i) {
        return corrupt(file.describe() + ": metadata key '" + std::string(key) + "' is " +
                       v->to_display_string(4) + ", expected a token id (an integer)");
    }
    if (*i < 0 || *i > std::numeric_limits<int32_t>::max()) {
        return corrupt(file.describe() + ": metadata key '" + std::string(key) + "' = " +
                       std::to_string(*i) + " is not a token id");
    }
    return static_cast<int32_t>(*i);
}

}  // namespace

Expected<TokenizerVocab> vocab_from_gguf(const GgufFile& file) {
    TokenizerVocab v;
    auto model = file.get_string("tokenizer.ggml.model");
    if (!model) return model.status().with_context("reading the tokenizer");
    v.model = std::move(*model);
    const bool spm = v.model == "llama";

    auto pre = file.get_string_or("tokenizer.ggml.pre", "default");
    if (!pre) return pre.status();
    v.pre = std::move(*pre);

    auto tokens = file.get_string_array("tokenizer.ggml.tokens");
    if (!tokens) return tokens.status().with_context("reading the tokenizer");
    v.tokens = std::move(*tokens);

    if (file.has("tokenizer.ggml.scores")) {
        auto scores = file.get_f32_array("tokenizer.ggml.scores");
        if (!scores) return scores.status();
        v.scores = std::move(*scores);
    }
    if (file.has("tokenizer.ggml.token_type")) {
        auto types = file.get_i32_array("tokenizer.ggml.token_type");
        if (!types) return types.status();
        v.token_types = std::move(*types);
    }
    if (file.has("tokenizer.ggml.merges") || v.model == "gpt2") {
        auto merges = file.get_string_array("tokenizer.ggml.merges");
        if (!merges) return merges.status().with_context("reading the byte-level BPE tokenizer");
        v.merges = std::move(*merges);
    }

    const std::pair<const char*, int32_t*> ids[] = {
        {"tokenizer.ggml.bos_token_id", &v.bos},
        {"tokenizer.ggml.eos_token_id", &v.eos},
        {"tokenizer.ggml.unknown_token_id", &v.unk},
        {"tokenizer.ggml.padding_token_id", &v.pad},
        {"tokenizer.ggml.eot_token_id", &v.eot},
        {"tokenizer.ggml.eom_token_id", &v.eom},
    };
    const int32_t spm_defaults[] = {1, 2, 0, -1, -1, -1};
    for (size_t i = 0; i < std::size(ids); ++i) {
        auto id = read_token_id(file, ids[i].first, spm ? spm_defaults[i] : -1);
        if (!id) return id.status();
        *ids[i].second = *id;
    }

    if (file.has("tokenizer.ggml.eos_token_ids")) {
        auto eos_ids = file.get_i32_array("tokenizer.ggml.eos_token_ids");
        if (!eos_ids) return eos_ids.status();
        v.eos_ids = std::move(*eos_ids);
    }

    auto add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", spm);
    if (!add_bos) return add_bos.status();
    v.add_bos = *add_bos;
    auto add_eos = file.get_bool_or("tokenizer.ggml.add_eos_token", false);
    if (!add_eos) return add_eos.status();
    v.add_eos = *add_eos;
    auto add_space = file.get_bool_or("tokenizer.ggml.add_space_prefix", spm);
    if (!add_space) return add_space.status();
    v.add_space_prefix = *add_space;

    auto chat_template = file.get_string_or("tokenizer.chat_template", "");
    if (!chat_template) return chat_template.status();
    v.chat_template = std::move(*chat_template);
    return v;
}

}  // namespace llmq

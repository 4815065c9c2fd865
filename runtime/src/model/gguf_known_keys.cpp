#include "gguf_known_keys.hpp"

#include <string_view>

namespace llmq {

namespace {

// The specification's type of each key llmq reads (an array's element type in `element`).
// Readers that accept "any integer that fits" would take a general.alignment stored as
// INT32 or scores stored as INT8; llama.cpp refuses those too, so a file that has them was
// written by a broken converter or by hand, and it is refused here, where the key is named.
struct KnownKey {
    std::string_view key;
    GgufType type;
    GgufType element = GgufType::u8;
};

constexpr KnownKey known_keys[] = {
    {"general.architecture", GgufType::string},
    {"general.alignment", GgufType::u32},
    {"tokenizer.ggml.model", GgufType::string},
    {"tokenizer.ggml.pre", GgufType::string},
    {"tokenizer.ggml.tokens", GgufType::array, GgufType::string},
    {"tokenizer.ggml.scores", GgufType::array, GgufType::f32},
    {"tokenizer.ggml.token_type", GgufType::array, GgufType::i32},
    {"tokenizer.ggml.merges", GgufType::array, GgufType::string},
    {"tokenizer.ggml.add_bos_token", GgufType::boolean},
    {"tokenizer.ggml.add_eos_token", GgufType::boolean},
    {"tokenizer.ggml.add_space_prefix", GgufType::boolean},
    {"tokenizer.chat_template", GgufType::string},
    {"llmq.rope.neox", GgufType::boolean},
};

// Special token ids: UINT32, and an index into tokenizer.ggml.tokens. There is no "none"
// value; a model without such a token leaves the key out.
constexpr std::string_view token_id_keys[] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.separator_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",     "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id",
};

std::string type_of(const GgufValue& v) {
    if (!v.is_array()) return gguf_type_name(v.type());
    return std::string("array of ") + gguf_type_name(v.array_type());
}

std::string type_of(const KnownKey& k) {
    if (k.type != GgufType::array) return gguf_type_name(k.type);
    return std::string("array of ") + gguf_type_name(k.element);
}

}  // namespace

Status check_known_keys(const GgufFile& file) {
    auto fail = [&](std::string_view key, const std::string& problem) {
        return corrupt(file.describe() + ": metadata key '" + std::string(key) + "' " +
                       problem);
    };
    for (const KnownKey& k : known_keys) {
        const GgufValue* v = file.find(k.key);
        if (!v) continue;
        if (v->type() != k.type || (k.type == GgufType::array && v->array_type() != k.element))
            return fail(k.key, "is " + type_of(*v) + " (" + v->to_display_string(4) +
                                   "); the GGUF specification stores it as " + type_of(k));
    }
    const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
    for (std::string_view key : token_id_keys) {
        const GgufValue* v = file.find(key);
        if (!v) continue;
        if (v->type() != GgufType::u32)
            return fail(key, "is " + type_of(*v) + " (" + v->to_display_string(4) +
                                 "); the GGUF specification stores a token id as u32");
        const uint64_t id = *v->as_u64();
        if (tokens && id >= tokens->array_size())
            return fail(key, "= " + std::to_string(id) + " is not a token of the vocabulary (" +
                                 std::to_string(tokens->array_size()) +
                                 " entries in tokenizer.ggml.tokens); leave the key out when "
                                 "the model has no such token");
    }
    return Status();
}

}  // namespace llmq

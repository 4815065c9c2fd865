// Builders for Hugging Face model directories in tests: config.json, a byte-level
// tokenizer.json, and safetensors files written byte by byte (so a test can write any
// defect into a header).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "handcrafted_gguf.hpp"

namespace llmq::test {

// A safetensors file: 8-byte header length, the header text as given, then the data.
inline std::vector<uint8_t> safetensors_bytes(const std::string& header, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out(8);
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

struct StTensor {
    std::string name;
    std::string dtype;             // "F32", "BF16", ...
    std::vector<int64_t> shape;    // PyTorch order
    std::vector<uint8_t> bytes;
};

// Deterministic small values (|x| < 0.5) as F32 or BF16 bytes.
inline std::vector<uint8_t> tensor_bytes(const std::string& dtype, int64_t n, uint32_t seed) {
    std::vector<uint8_t> out;
    uint32_t state = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; ++i) {
        state = state * 1664525u + 1013904223u;
        const float v = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.5f;
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        if (dtype == "BF16") {
            out.push_back(static_cast<uint8_t>(bits >> 16));
            out.push_back(static_cast<uint8_t>(bits >> 24));
        } else {
            for (int b = 0; b < 4; ++b) out.push_back(static_cast<uint8_t>(bits >> (8 * b)));
        }
    }
    return out;
}

// A valid safetensors file of `tensors` (data 8-byte aligned, as the format's writer pads).
inline std::vector<uint8_t> safetensors_file(const std::vector<StTensor>& tensors) {
    nlohmann::json h = nlohmann::json::object();
    std::vector<uint8_t> data;
    for (const StTensor& t : tensors) {
        h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    }
    std::string text = h.dump();
    while ((8 + text.size()) % 8 != 0) text += ' ';
    return safetensors_bytes(text, data);
}

// A tiny Llama: 256 byte tokens, dim 16, 1 layer, 2 heads, 1 KV head, ffn 32.
struct TinyHfModel {
    nlohmann::json config = {
        {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 16},
        {"intermediate_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
        {"num_key_value_heads", 1}, {"max_position_embeddings", 256}, {"rms_norm_eps", 1e-5},
        {"rope_theta", 10000.0}, {"vocab_size", 256}, {"hidden_act", "silu"},
        {"tie_word_embeddings", false}, {"bos_token_id", 0}, {"eos_token_id", 1}};
    std::vector<StTensor> tensors;
    nlohmann::json tokenizer;

    explicit TinyHfModel(const std::string& dtype = "BF16", const std::string& norm_dtype = "BF16") {
        auto add = [&](const std::string& name, std::vector<int64_t> shape, const std::string& dt) {
            int64_t n = 1;
            for (int64_t d : shape) n *= d;
            tensors.push_back({name, dt, shape, tensor_bytes(dt, n, static_cast<uint32_t>(tensors.size() + 1))});
        };
        add("model.embed_tokens.weight", {256, 16}, dtype);
        add("model.norm.weight", {16}, norm_dtype);
        add("lm_head.weight", {256, 16}, dtype);
        const std::string p = "model.layers.0.";
        add(p + "input_layernorm.weight", {16}, norm_dtype);
        add(p + "self_attn.q_proj.weight", {16, 16}, dtype);
        add(p + "self_attn.k_proj.weight", {8, 16}, dtype);
        add(p + "self_attn.v_proj.weight", {8, 16}, dtype);
        add(p + "self_attn.o_proj.weight", {16, 16}, dtype);
        add(p + "post_attention_layernorm.weight", {16}, norm_dtype);
        add(p + "mlp.gate_proj.weight", {32, 16}, dtype);
        add(p + "mlp.up_proj.weight", {32, 16}, dtype);
        add(p + "mlp.down_proj.weight", {16, 32}, dtype);

        // GPT-2's byte alphabet as the whole vocabulary, no merges.
        nlohmann::json vocab = nlohmann::json::object();
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(next++);
            std::string s;
            if (cp < 0x80) s += static_cast<char>(cp);
            else {
                s += static_cast<char>(0xC0 | (cp >> 6));
                s += static_cast<char>(0x80 | (cp & 0x3F));
            }
            vocab[s] = b;
        }
        tokenizer = {{"version", "1.0"}, {"added_tokens", nlohmann::json::array()}, {"normalizer", nullptr},
                     {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                     {"post_processor", nullptr}, {"decoder", {{"type", "ByteLevel"}}},
                     {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
    }

    StTensor* find(const std::string& name) {
        for (StTensor& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }

    // Writes config.json, tokenizer.json and model.safetensors into `dir` (the safetensors file
    // replaced by `shard_bytes` when given).
    void write(const ScratchDir& dir, const std::vector<uint8_t>* shard_bytes = nullptr) const {
        auto text = [&](const std::string& name, const std::string& s) {
            dir.write(name, std::vector<uint8_t>(s.begin(), s.end()));
        };
        text("config.json", config.dump());
        text("tokenizer.json", tokenizer.dump());
        dir.write("model.safetensors", shard_bytes ? *shard_bytes : safetensors_file(tensors));
    }
};

}  // namespace llmq::test

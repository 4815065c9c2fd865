#include "random_mllama_vision.hpp"

#include <cmath>
#include <cstring>

#include "llmq/runtime/gguf.hpp"
#include "random_rows.hpp"

namespace llmq {

Status check_random_mllama_vision(const RandomMllamaVisionSpec& s) {
    auto bad = [](const std::string& m) { return invalid_argument("mllama vision spec: " + m); };
    for (uint32_t v : {s.image_size, s.patch_size, s.dim, s.ffn, s.heads, s.layers, s.projection_dim})
        if (v < 1 || v > (1u << 20)) return bad("every size must be in 1..2^20");
    if (s.global_layers > (1u << 20)) return bad("global_layers must be at most 2^20");
    if (s.image_size % s.patch_size != 0) return bad("image_size must be a multiple of patch_size");
    if (s.dim % s.heads != 0) return bad("dim must be a multiple of heads");
    if (s.max_tiles < 1 || s.max_tiles > 16) return bad("max_tiles must be in 1..16");
    if (s.intermediate_layers.empty()) return bad("at least one intermediate layer is needed");
    for (int32_t i : s.intermediate_layers)
        if (i < 0 || i > int32_t(s.layers))
            return bad("intermediate layer " + std::to_string(i) + " is not in 0.." + std::to_string(s.layers));
    if (!dtype_to_ggml_type(s.dtype) || kernels::dtype_info_of(s.dtype).block_values != 1)
        return bad("dtype must be f32, f16 or bf16");
    return {};
}

Status add_random_mllama_vision(const RandomMllamaVisionSpec& s, GgufWriter& w) {
    LLMQ_TRY(check_random_mllama_vision(s));
    const std::string k = "mllama.vision.";
    w.add(k + "block_count", GgufValue::u32(s.layers));
    w.add(k + "global.block_count", GgufValue::u32(s.global_layers));
    w.add(k + "intermediate_layers_indices", GgufValue::array_i32(s.intermediate_layers));
    w.add(k + "embedding_length", GgufValue::u32(s.dim));
    w.add(k + "feed_forward_length", GgufValue::u32(s.ffn));
    w.add(k + "attention.head_count", GgufValue::u32(s.heads));
    w.add(k + "attention.layer_norm_epsilon", GgufValue::f32(1e-5f));
    w.add(k + "image_size", GgufValue::u32(s.image_size));
    w.add(k + "patch_size", GgufValue::u32(s.patch_size));
    w.add(k + "max_num_tiles", GgufValue::u32(s.max_tiles));
    w.add(k + "num_channels", GgufValue::u32(3));

    const bool data = !s.header_only;
    auto tensor = [&](const std::string& name, kernels::dtype dt, std::vector<int64_t> shape, Distribution d) {
        RowGenerator fill(s.seed, name, d, shape[0], dt);
        return w.add_tensor(name, *dtype_to_ggml_type(dt), std::move(shape),
                            data ? GgufWriter::RowFill(fill) : GgufWriter::RowFill{});
    };
    // A gate: HF's parameter g drawn near ±1, stored through tanh (optionally 1 - tanh).
    auto gate = [&](const std::string& name, const std::string& drawn_as, bool one_minus) {
        float g = 0;
        RowGenerator(s.seed, drawn_as, {0.0f, 0.8f}, 1, kernels::dtype::f32)(0, reinterpret_cast<uint8_t*>(&g));
        const float stored = one_minus ? 1.0f - std::tanh(g) : std::tanh(g);
        return w.add_tensor(name, *dtype_to_ggml_type(kernels::dtype::f32), {1},
                            data ? GgufWriter::RowFill([stored](int64_t, uint8_t* dst) {
                                std::memcpy(dst, &stored, sizeof stored);
                            })
                                 : GgufWriter::RowFill{});
    };
    auto norm = [&](const std::string& prefix) -> Status {
        LLMQ_TRY(tensor(prefix + ".weight", kernels::dtype::f32, {int64_t(s.dim)}, {1.0f, 0.1f}));
        return tensor(prefix + ".bias", kernels::dtype::f32, {int64_t(s.dim)}, {0.0f, 0.02f});
    };
    auto linear = [&](const std::string& prefix, int64_t in, int64_t out, bool bias) -> Status {
        LLMQ_TRY(tensor(prefix + ".weight", s.dtype, {in, out}, {0.0f, 1.0f / std::sqrt(float(in))}));
        return bias ? tensor(prefix + ".bias", kernels::dtype::f32, {out}, {0.0f, 0.02f}) : Status{};
    };
    const int64_t D = s.dim, p = s.patch_size, grid = s.image_size / s.patch_size, Pp = grid * grid + 1;
    const int64_t T = s.max_tiles;
    int64_t grids = 0;
    for (int64_t h = 1; h <= T; ++h) grids += T / h;
    const int64_t R = grids + 1;  // id 0 is HF's "no image"
    const Distribution embedding{0.0f, 1.0f / std::sqrt(float(D))};
    LLMQ_TRY(tensor("v.patch_embd.weight", s.dtype, {p, p, 3, D}, {0.0f, 1.0f / std::sqrt(float(3 * p * p))}));
    LLMQ_TRY(tensor("v.class_embd", kernels::dtype::f32, {D}, {0.0f, 1.0f}));
    LLMQ_TRY(tensor("v.position_embd.weight", s.dtype, {D, Pp}, embedding));
    // One parameter in HF (gated_positional_embedding.gate); the converter writes it twice.
    LLMQ_TRY(gate("v.position_embd.gate", "gated_positional_embedding.gate", true));
    LLMQ_TRY(gate("v.tile_position_embd.gate", "gated_positional_embedding.gate", false));
    LLMQ_TRY(tensor("v.tile_position_embd.weight", s.dtype, {T * Pp * D, R}, embedding));
    for (const char* n : {"v.pre_tile_position_embd", "v.post_tile_position_embd"}) {
        LLMQ_TRY(tensor(std::string(n) + ".weight", s.dtype, {T * D, R}, embedding));
        LLMQ_TRY(gate(std::string(n) + ".gate", std::string(n) + ".gate", false));
    }
    LLMQ_TRY(norm("v.pre_ln"));
    LLMQ_TRY(norm("v.post_ln"));
    auto layer = [&](const std::string& b, bool gated) -> Status {
        LLMQ_TRY(norm(b + "attn_norm"));
        for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) LLMQ_TRY(linear(b + n, D, D, false));
        LLMQ_TRY(norm(b + "ffn_norm"));
        LLMQ_TRY(linear(b + "ffn_up", D, s.ffn, true));    // HF's fc1, by the converter's name
        LLMQ_TRY(linear(b + "ffn_down", s.ffn, D, true));  // fc2
        if (gated) {
            LLMQ_TRY(gate(b + "attn_gate", b + "attn_gate", false));
            LLMQ_TRY(gate(b + "ffn_gate", b + "ffn_gate", false));
        }
        return {};
    };
    for (uint32_t l = 0; l < s.layers; ++l) LLMQ_TRY(layer("v.blk." + std::to_string(l) + ".", false));
    for (uint32_t l = 0; l < s.global_layers; ++l) LLMQ_TRY(layer("v.global.blk." + std::to_string(l) + ".", true));
    const int64_t features = D * (1 + int64_t(s.intermediate_layers.size()));
    return linear("mm.0", features, s.projection_dim, true);
}

Status write_random_mllama_vision(const RandomMllamaVisionSpec& s, const std::string& path) {
    GgufWriter::Options options;
    options.header_only = s.header_only;
    GgufWriter w(options);
    w.add("general.architecture", GgufValue::string("mllama"));
    w.add("general.name", GgufValue::string("llmq-random-mllama-vision"));
    LLMQ_TRY(add_random_mllama_vision(s, w));
    return w.write(path);
}

}  // namespace llmq

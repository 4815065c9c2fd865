#include "random_clip.hpp"

#include <cmath>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "random_rows.hpp"

namespace llmq {

Status write_random_clip(const RandomClipSpec& s, const std::string& path) {
    auto bad = [](const std::string& m) { return invalid_argument("clip spec: " + m); };
    for (uint32_t v : {s.image_size, s.patch_size, s.dim, s.ffn, s.heads, s.layers, s.projection_dim})
        if (v < 1 || v > (1u << 20)) return bad("every size must be in 1..2^20");
    if (s.image_size % s.patch_size != 0) return bad("image_size must be a multiple of patch_size");
    if (s.dim % s.heads != 0) return bad("dim must be a multiple of heads");
    if (s.feature_layer != -1 && (s.feature_layer < 1 || s.feature_layer > int32_t(s.layers)))
        return bad("feature_layer must be in 1..layers");
    const auto wt = dtype_to_ggml_type(s.dtype);
    if (!wt || kernels::dtype_info_of(s.dtype).block_values != 1) return bad("dtype must be f32, f16 or bf16");

    GgufWriter::Options options;
    options.header_only = s.header_only;
    GgufWriter w(options);
    w.add("general.architecture", GgufValue::string("clip"));
    w.add("general.name", GgufValue::string(s.name));
    w.add("general.description", GgufValue::string("image encoder for LLaVA"));
    w.add("clip.has_text_encoder", GgufValue::boolean(false));
    w.add("clip.has_vision_encoder", GgufValue::boolean(true));
    w.add("clip.has_llava_projector", GgufValue::boolean(true));
    w.add("clip.projector_type", GgufValue::string("mlp"));
    w.add("clip.vision.image_size", GgufValue::u32(s.image_size));
    w.add("clip.vision.patch_size", GgufValue::u32(s.patch_size));
    w.add("clip.vision.embedding_length", GgufValue::u32(s.dim));
    w.add("clip.vision.feed_forward_length", GgufValue::u32(s.ffn));
    w.add("clip.vision.projection_dim", GgufValue::u32(s.projection_dim));
    w.add("clip.vision.attention.head_count", GgufValue::u32(s.heads));
    w.add("clip.vision.attention.layer_norm_epsilon", GgufValue::f32(1e-5f));
    w.add("clip.vision.block_count", GgufValue::u32(s.layers));
    if (s.feature_layer != -1) {
        const int32_t layer[] = {s.feature_layer};
        w.add("clip.vision.feature_layer", GgufValue::array_i32(layer));
    }
    const float mean[] = {0.48145466f, 0.4578275f, 0.40821073f}, stdv[] = {0.26862954f, 0.26130258f, 0.27577711f};
    w.add("clip.vision.image_mean", GgufValue::array_f32(mean));
    w.add("clip.vision.image_std", GgufValue::array_f32(stdv));
    w.add("clip.use_gelu", GgufValue::boolean(s.gelu));

    auto tensor = [&](const std::string& name, kernels::dtype dt, std::vector<int64_t> shape, Distribution d) {
        RowGenerator fill(s.seed, name, d, shape[0], dt);
        return w.add_tensor(name, *dtype_to_ggml_type(dt), std::move(shape),
                            s.header_only ? GgufWriter::RowFill{} : GgufWriter::RowFill(fill));
    };
    auto linear = [&](const std::string& prefix, int64_t in, int64_t out) -> Status {
        LLMQ_TRY(tensor(prefix + ".weight", s.dtype, {in, out}, {0.0f, 1.0f / std::sqrt(float(in))}));
        return tensor(prefix + ".bias", kernels::dtype::f32, {out}, {0.0f, 0.02f});
    };
    const int64_t D = s.dim, p = s.patch_size, grid = s.image_size / s.patch_size, P = grid * grid;
    const kernels::dtype patch_dt = s.patch_f16 ? kernels::dtype::f16 : s.dtype;
    LLMQ_TRY(tensor("v.patch_embd.weight", patch_dt, {p, p, 3, D}, {0.0f, 1.0f / std::sqrt(float(3 * p * p))}));
    LLMQ_TRY(tensor("v.class_embd", kernels::dtype::f32, {D}, {0.0f, 0.5f}));
    LLMQ_TRY(tensor("v.position_embd.weight", s.dtype, {D, P + 1}, {0.0f, 0.1f}));
    LLMQ_TRY(tensor("v.pre_ln.weight", kernels::dtype::f32, {D}, {1.0f, 0.1f}));
    LLMQ_TRY(tensor("v.pre_ln.bias", kernels::dtype::f32, {D}, {0.0f, 0.02f}));
    for (uint32_t l = 0; l < s.layers; ++l) {
        const std::string b = "v.blk." + std::to_string(l) + ".";
        for (const char* n : {"ln1", "ln2"}) {
            LLMQ_TRY(tensor(b + n + ".weight", kernels::dtype::f32, {D}, {1.0f, 0.1f}));
            LLMQ_TRY(tensor(b + n + ".bias", kernels::dtype::f32, {D}, {0.0f, 0.02f}));
        }
        for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_out"}) LLMQ_TRY(linear(b + n, D, D));
        LLMQ_TRY(linear(b + "ffn_down", D, s.ffn));  // CLIP's fc1, by the converter's name
        LLMQ_TRY(linear(b + "ffn_up", s.ffn, D));    // fc2
    }
    LLMQ_TRY(linear("mm.0", D, s.projection_dim));
    LLMQ_TRY(linear("mm.2", s.projection_dim, s.projection_dim));
    return w.write(path);
}

}  // namespace llmq

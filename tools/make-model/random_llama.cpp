#include "random_llama.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <vector>

#include "llmq/runtime/device.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/weight_mix.hpp"
#include "random_rows.hpp"
#include "synthetic_vocab.hpp"

namespace llmq {
namespace {

constexpr uint32_t default_vocab = 512;

const WeightMix* mix_of(const RandomLlamaSpec& s) {
    return find_weight_mix(s.mix.empty() ? kernels::dtype_name(s.dtype) : s.mix);
}

Status check_spec(const RandomLlamaSpec& s) {
    auto bad = [](const std::string& m) { return invalid_argument("model spec: " + m); };
    if (s.arch != "llama" && s.arch != "mistral" && s.arch != "qwen2" && s.arch != "mllama") {
        return bad("--arch must be llama, mistral, qwen2 or mllama, not '" + s.arch + "'");
    }
    if ((s.arch == "mllama") != !s.cross_layers.empty())
        return bad("--cross-layers go with --arch mllama, and an mllama model needs at least one");
    for (uint32_t l : s.cross_layers)
        if (l >= s.layers) return bad("cross-attention layer " + std::to_string(l) + " is not below --layers");
    if (s.arch == "mllama" && (s.tied || !s.vocab_from.empty()))
        return bad("an mllama model has its own LM head and a synthetic vocabulary (no --tied, no --vocab-from)");
    if (s.dim == 0 || s.layers == 0 || s.heads == 0 || s.kv_heads == 0 || s.ffn == 0 ||
        s.context == 0) {
        return bad("dim, layers, heads, kv-heads, ffn and context must all be positive");
    }
    if (s.dim % s.heads != 0) {
        return bad("dim " + std::to_string(s.dim) + " is not divisible by heads " +
                   std::to_string(s.heads));
    }
    if (s.heads % s.kv_heads != 0) {
        return bad("heads " + std::to_string(s.heads) + " is not a multiple of kv-heads " +
                   std::to_string(s.kv_heads));
    }
    if ((s.dim / s.heads) % 2 != 0) {
        return bad("the head size dim/heads = " + std::to_string(s.dim / s.heads) +
                   " must be even (RoPE rotates pairs)");
    }
    const WeightMix* mix = mix_of(s);
    if (mix == nullptr) return bad("dtype must be one of " + weight_mix_names());
    for (kernels::dtype t : {mix->base, mix->output, mix->more_bits}) {
        const auto block = static_cast<uint32_t>(kernels::dtype_info_of(t).block_values);
        if (s.dim % block != 0 || s.ffn % block != 0) {
            return bad(std::string(kernels::dtype_name(t)) + " needs dim and ffn to be multiples of " +
                       std::to_string(block));
        }
    }
    if (!(s.rms_eps > 0.0f) || !(s.rope_theta > 0.0f)) {
        return bad("rms-eps and rope-theta must be positive");
    }
    return Status();
}

// Copies every tokenizer.* key of `path`; returns the token count.
Expected<uint32_t> copy_vocab(GgufWriter& w, const std::string& path) {
    auto src = GgufFile::open(path, GgufFile::Options{.require_data = false,
                                                      .allow_unsupported_types = true});
    if (!src) return src.status().with_context("reading the vocabulary for --vocab-from");
    auto n = (*src)->get_array_size("tokenizer.ggml.tokens");
    if (!n) return n.status().with_context("reading the vocabulary for --vocab-from");
    if (*n == 0 || *n > UINT32_MAX) {
        return invalid_argument("--vocab-from " + path + ": tokenizer.ggml.tokens has " +
                                std::to_string(*n) + " entries");
    }
    for (const auto& [key, value] : (*src)->metadata()) {
        if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
    }
    return static_cast<uint32_t>(*n);
}

}  // namespace

std::vector<float> llama31_rope_factors(uint32_t head_dim, float theta) {
    return llama3_rope_factors(head_dim, theta, Llama3RopeScaling{});
}

Status write_random_llama(const RandomLlamaSpec& spec, const std::string& path) {
    LLMQ_TRY(check_spec(spec));
    // Rows are a function of (seed, tensor, row) only, so every core may draw them.
    GgufWriter w(GgufWriter::Options{.header_only = spec.header_only, .fill_threads = host_online_cores()});
    const std::string a = spec.arch + ".";
    const uint32_t head_dim = spec.dim / spec.heads;

    w.set("general.architecture", GgufValue::string(spec.arch));
    w.set("general.name", GgufValue::string(spec.name));
    const WeightMix& mix = *mix_of(spec);
    w.set("general.file_type", GgufValue::u32(mix.file_type));
    w.set(a + "context_length", GgufValue::u32(spec.context));
    w.set(a + "embedding_length", GgufValue::u32(spec.dim));
    w.set(a + "block_count", GgufValue::u32(spec.layers));
    w.set(a + "feed_forward_length", GgufValue::u32(spec.ffn));
    w.set(a + "attention.head_count", GgufValue::u32(spec.heads));
    w.set(a + "attention.head_count_kv", GgufValue::u32(spec.kv_heads));
    w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(spec.rms_eps));
    w.set(a + "rope.freq_base", GgufValue::f32(spec.rope_theta));
    w.set(a + "rope.dimension_count", GgufValue::u32(head_dim));
    if (spec.sliding_window) w.set(a + "attention.sliding_window", GgufValue::u32(spec.sliding_window));

    uint32_t n_vocab = 0;
    if (!spec.vocab_from.empty()) {
        auto n = copy_vocab(w, spec.vocab_from);
        if (!n) return n.status();
        if (spec.vocab != 0 && spec.vocab != *n) {
            return invalid_argument("model spec: --vocab " + std::to_string(spec.vocab) +
                                    " disagrees with the " + std::to_string(*n) +
                                    " tokens of --vocab-from " + spec.vocab_from);
        }
        n_vocab = *n;
    } else {
        n_vocab = spec.vocab != 0 ? spec.vocab : default_vocab;
        const bool mllama = spec.arch == "mllama";
        LLMQ_TRY(add_synthetic_vocab(w, n_vocab, mllama ? std::vector<std::string>{"<|image|>"} : std::vector<std::string>{}));
        if (mllama) {
            std::vector<int32_t> layers(spec.cross_layers.begin(), spec.cross_layers.end());
            w.set(a + "attention.cross_attention_layers", GgufValue::array_i32(layers));
        }
    }
    w.set(a + "vocab_size", GgufValue::u32(n_vocab));

    const uint32_t f32 = static_cast<uint32_t>(GgmlType::f32);
    // The GGML type of a matmul weight (or embedding) called `name`.
    auto weight = [&](const std::string& name) {
        return *dtype_to_ggml_type(weight_mix_dtype(mix, name, spec.layers, spec.tied));
    };
    auto add = [&](const std::string& name, uint32_t type, std::vector<int64_t> shape,
                   Distribution d) -> Status {
        kernels::dtype dt = *ggml_type_to_dtype(type);
        GgufWriter::RowFill fill;
        if (!spec.header_only) fill = RowGenerator(spec.seed, name, d, shape[0], dt);
        return w.add_tensor(name, type, std::move(shape), std::move(fill));
    };
    auto add_weight = [&](const std::string& name, std::vector<int64_t> shape, Distribution d) {
        return add(name, weight(name), std::move(shape), d);
    };
    auto matmul = [](int64_t inputs) { return Distribution{0.0f, 1.0f / std::sqrt(float(inputs))}; };
    const Distribution norm{1.0f, 0.1f};
    const Distribution bias{0.0f, 0.1f};
    const int64_t dim = spec.dim, ffn = spec.ffn, vocab = n_vocab;
    const int64_t kv_dim = int64_t{spec.kv_heads} * head_dim;

    // mllama's table has 8 rows past the LM head's vocabulary (Hugging Face: vocab_size + 8).
    const int64_t embd_rows = spec.arch == "mllama" ? vocab + 8 : vocab;
    LLMQ_TRY(add_weight("token_embd.weight", {dim, embd_rows}, matmul(dim)));
    LLMQ_TRY(add("output_norm.weight", f32, {dim}, norm));
    if (!spec.tied) LLMQ_TRY(add_weight("output.weight", {dim, vocab}, matmul(dim)));
    if (spec.rope_freqs) {
        GgufWriter::RowFill fill;
        if (!spec.header_only) {
            fill = [factors = llama31_rope_factors(head_dim, spec.rope_theta)](int64_t, uint8_t* dst) {
                std::memcpy(dst, factors.data(), factors.size() * sizeof(float));
            };
        }
        LLMQ_TRY(w.add_tensor("rope_freqs.weight", f32, {int64_t{head_dim} / 2}, std::move(fill)));
    }
    for (uint32_t i = 0; i < spec.layers; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        LLMQ_TRY(add(b + "attn_norm.weight", f32, {dim}, norm));
        if (std::find(spec.cross_layers.begin(), spec.cross_layers.end(), i) != spec.cross_layers.end()) {
            // Gates away from HF's initial 0, so that the layers matter in tests.
            const Distribution gate{0.5f, 0.3f};
            const std::string c = b + "cross_attn_";
            LLMQ_TRY(add_weight(c + "q_proj.weight", {dim, dim}, matmul(dim)));
            LLMQ_TRY(add_weight(c + "k_proj.weight", {dim, kv_dim}, matmul(dim)));
            LLMQ_TRY(add_weight(c + "v_proj.weight", {dim, kv_dim}, matmul(dim)));
            LLMQ_TRY(add_weight(c + "o_proj.weight", {dim, dim}, matmul(dim)));
            LLMQ_TRY(add(c + "q_norm.weight", f32, {int64_t{head_dim}}, norm));
            LLMQ_TRY(add(c + "k_norm.weight", f32, {int64_t{head_dim}}, norm));
            LLMQ_TRY(add(c + "attn_gate", f32, {1}, gate));
            LLMQ_TRY(add(c + "mlp_gate", f32, {1}, gate));
            LLMQ_TRY(add(b + "ffn_norm.weight", f32, {dim}, norm));
            LLMQ_TRY(add_weight(b + "ffn_gate.weight", {dim, ffn}, matmul(dim)));
            LLMQ_TRY(add_weight(b + "ffn_up.weight", {dim, ffn}, matmul(dim)));
            LLMQ_TRY(add_weight(b + "ffn_down.weight", {ffn, dim}, matmul(ffn)));
            continue;
        }
        LLMQ_TRY(add_weight(b + "attn_q.weight", {dim, dim}, matmul(dim)));
        LLMQ_TRY(add_weight(b + "attn_k.weight", {dim, kv_dim}, matmul(dim)));
        LLMQ_TRY(add_weight(b + "attn_v.weight", {dim, kv_dim}, matmul(dim)));
        if (spec.qkv_bias) {
            LLMQ_TRY(add(b + "attn_q.bias", f32, {dim}, bias));
            LLMQ_TRY(add(b + "attn_k.bias", f32, {kv_dim}, bias));
            LLMQ_TRY(add(b + "attn_v.bias", f32, {kv_dim}, bias));
        }
        LLMQ_TRY(add_weight(b + "attn_output.weight", {dim, dim}, matmul(dim)));
        LLMQ_TRY(add(b + "ffn_norm.weight", f32, {dim}, norm));
        LLMQ_TRY(add_weight(b + "ffn_gate.weight", {dim, ffn}, matmul(dim)));
        LLMQ_TRY(add_weight(b + "ffn_up.weight", {dim, ffn}, matmul(dim)));
        LLMQ_TRY(add_weight(b + "ffn_down.weight", {ffn, dim}, matmul(ffn)));
    }
    if (spec.vision) {
        if (spec.arch != "mllama") return invalid_argument("model spec: a vision part goes with --arch mllama");
        RandomMllamaVisionSpec v = *spec.vision;
        v.projection_dim = spec.dim;
        v.header_only = spec.header_only;
        LLMQ_TRY(add_random_mllama_vision(v, w));
    }
    return w.write(path);
}

RandomMllamaVisionSpec mllama_vision_preset() {
    RandomMllamaVisionSpec v;
    v.image_size = 560;
    v.patch_size = 14;
    v.dim = 1280;
    v.ffn = 5120;
    v.heads = 16;
    v.layers = 32;
    v.global_layers = 8;
    v.max_tiles = 4;
    v.intermediate_layers = {3, 7, 15, 23, 30};
    v.dtype = kernels::dtype::bf16;
    return v;
}

bool mllama_text_preset(const std::string& which, RandomLlamaSpec* s) {
    s->arch = "mllama";
    s->vocab = 128256;
    s->heads = 32;
    s->kv_heads = 8;
    s->context = 131072;
    s->rope_theta = 500000.0f;
    s->rope_freqs = true;
    s->header_only = true;
    s->cross_layers.clear();
    if (which == "11b") {
        // 40 layers (32 self + 8 cross), cross_attention_layers 3, 8, ..., 38.
        s->name = "Llama-3.2-11B-Vision (shape)";
        s->dim = 4096;
        s->layers = 40;
        s->ffn = 14336;
        for (uint32_t l = 3; l < 40; l += 5) s->cross_layers.push_back(l);
        return true;
    }
    if (which == "90b") {
        // 100 layers (80 self + 20 cross), cross_attention_layers 3, 8, ..., 98.
        s->name = "Llama-3.2-90B-Vision (shape)";
        s->dim = 8192;
        s->layers = 100;
        s->heads = 64;
        s->ffn = 28672;
        for (uint32_t l = 3; l < 100; l += 5) s->cross_layers.push_back(l);
        return true;
    }
    return false;
}

}  // namespace llmq

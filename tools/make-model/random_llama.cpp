#include "random_llama.hpp"

#include <cmath>
#include <cstring>
#include <string_view>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "synthetic_vocab.hpp"

namespace llmq {
namespace {

constexpr uint32_t default_vocab = 512;

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view s) {  // FNV-1a
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

// How the values of one tensor are drawn: mean + stddev * z, z ~ approx. N(0, 1).
struct Distribution {
    float mean;
    float stddev;
};

// Fills rows of one tensor. Each row has its own stream seeded from (seed, name, row), so
// the values do not depend on how the writer chunks rows.
class RowGenerator {
public:
    RowGenerator(uint64_t seed, const std::string& name, Distribution d, int64_t row_length,
                 kernels::dtype dtype)
        : base_(seed ^ hash_name(name)), dist_(d), row_(static_cast<size_t>(row_length)),
          dtype_(dtype) {}

    void operator()(int64_t row, uint8_t* dst) {
        uint64_t state = base_ ^ (static_cast<uint64_t>(row) * 0xD1B54A32D192ED03ull);
        // Irwin-Hall with four 16-bit uniforms per draw: sum - 2 has variance 1/3, so
        // sqrt(3) (sum - 2) is close to a standard normal and costs one 64-bit draw.
        const float unit = 1.0f / 65536.0f;
        const float scale = dist_.stddev * std::sqrt(3.0f);
        for (float& v : row_) {
            uint64_t r = splitmix64(state);
            float sum = static_cast<float>(r & 0xFFFF) + static_cast<float>((r >> 16) & 0xFFFF) +
                        static_cast<float>((r >> 32) & 0xFFFF) + static_cast<float>(r >> 48);
            v = dist_.mean + scale * (sum * unit - 2.0f);
        }
        kernels::row_from_f32(dtype_, row_.data(), dst, static_cast<int64_t>(row_.size()));
    }

private:
    uint64_t base_;
    Distribution dist_;
    std::vector<float> row_;
    kernels::dtype dtype_;
};

Status check_spec(const RandomLlamaSpec& s) {
    auto bad = [](const std::string& m) { return invalid_argument("model spec: " + m); };
    if (s.arch != "llama" && s.arch != "mistral" && s.arch != "qwen2") {
        return bad("--arch must be llama, mistral or qwen2, not '" + s.arch + "'");
    }
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
    if (!dtype_to_ggml_type(s.dtype)) return bad("dtype must be f32, f16, bf16 or q8_0");
    if (s.dtype == kernels::dtype::q8_0 &&
        (s.dim % kernels::q8_0_block_values != 0 || s.ffn % kernels::q8_0_block_values != 0)) {
        return bad("q8_0 needs dim and ffn to be multiples of 32");
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
    constexpr double scale = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_context = 8192.0;
    const double low_freq_wavelen = original_context / low_freq_factor;
    const double high_freq_wavelen = original_context / high_freq_factor;
    std::vector<float> factors(head_dim / 2);
    for (uint32_t i = 0; i < head_dim / 2; ++i) {
        const double freq = std::pow(double(theta), -2.0 * i / head_dim);
        const double wavelen = 2.0 * M_PI / freq;
        if (wavelen < high_freq_wavelen) {
            factors[i] = 1.0f;
        } else if (wavelen > low_freq_wavelen) {
            factors[i] = float(scale);
        } else {
            const double smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            factors[i] = float(1.0 / ((1.0 - smooth) / scale + smooth));
        }
    }
    return factors;
}

Status write_random_llama(const RandomLlamaSpec& spec, const std::string& path) {
    LLMQ_TRY(check_spec(spec));
    GgufWriter w(GgufWriter::Options{.header_only = spec.header_only});
    const std::string a = spec.arch + ".";
    const uint32_t head_dim = spec.dim / spec.heads;

    w.set("general.architecture", GgufValue::string(spec.arch));
    w.set("general.name", GgufValue::string(spec.name));
    // general.file_type as llama.cpp numbers it: all F32 = 0, mostly F16 = 1, Q8_0 = 7, BF16 = 32.
    uint32_t file_type = spec.dtype == kernels::dtype::f16    ? 1
                         : spec.dtype == kernels::dtype::q8_0 ? 7
                         : spec.dtype == kernels::dtype::bf16 ? 32
                                                              : 0;
    w.set("general.file_type", GgufValue::u32(file_type));
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
        LLMQ_TRY(add_synthetic_vocab(w, n_vocab));
    }
    w.set(a + "vocab_size", GgufValue::u32(n_vocab));

    const uint32_t wt = *dtype_to_ggml_type(spec.dtype);
    const uint32_t f32 = static_cast<uint32_t>(GgmlType::f32);
    auto add = [&](const std::string& name, uint32_t type, std::vector<int64_t> shape,
                   Distribution d) -> Status {
        kernels::dtype dt = *ggml_type_to_dtype(type);
        GgufWriter::RowFill fill;
        if (!spec.header_only) fill = RowGenerator(spec.seed, name, d, shape[0], dt);
        return w.add_tensor(name, type, std::move(shape), std::move(fill));
    };
    auto matmul = [](int64_t inputs) { return Distribution{0.0f, 1.0f / std::sqrt(float(inputs))}; };
    const Distribution norm{1.0f, 0.1f};
    const Distribution bias{0.0f, 0.1f};
    const int64_t dim = spec.dim, ffn = spec.ffn, vocab = n_vocab;
    const int64_t kv_dim = int64_t{spec.kv_heads} * head_dim;

    LLMQ_TRY(add("token_embd.weight", wt, {dim, vocab}, matmul(dim)));
    LLMQ_TRY(add("output_norm.weight", f32, {dim}, norm));
    if (!spec.tied) LLMQ_TRY(add("output.weight", wt, {dim, vocab}, matmul(dim)));
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
        LLMQ_TRY(add(b + "attn_q.weight", wt, {dim, dim}, matmul(dim)));
        LLMQ_TRY(add(b + "attn_k.weight", wt, {dim, kv_dim}, matmul(dim)));
        LLMQ_TRY(add(b + "attn_v.weight", wt, {dim, kv_dim}, matmul(dim)));
        if (spec.qkv_bias) {
            LLMQ_TRY(add(b + "attn_q.bias", f32, {dim}, bias));
            LLMQ_TRY(add(b + "attn_k.bias", f32, {kv_dim}, bias));
            LLMQ_TRY(add(b + "attn_v.bias", f32, {kv_dim}, bias));
        }
        LLMQ_TRY(add(b + "attn_output.weight", wt, {dim, dim}, matmul(dim)));
        LLMQ_TRY(add(b + "ffn_norm.weight", f32, {dim}, norm));
        LLMQ_TRY(add(b + "ffn_gate.weight", wt, {dim, ffn}, matmul(dim)));
        LLMQ_TRY(add(b + "ffn_up.weight", wt, {dim, ffn}, matmul(dim)));
        LLMQ_TRY(add(b + "ffn_down.weight", wt, {ffn, dim}, matmul(ffn)));
    }
    return w.write(path);
}

}  // namespace llmq

// The vision kernels (llmq/kernels/vision.hpp). Common code, built without ISA flags: the
// element-wise ones are simple loops, the heavy ones reach the ISA variants through gemm() and
// paged_attention().
#include "llmq/kernels/vision.hpp"

#include <algorithm>
#include <cmath>

#include "kernel_table.hpp"

namespace llmq::kernels {

int64_t patch_embedding_scratch_floats(int32_t channels, int32_t patch, int64_t rows) {
    return rows * int64_t(channels) * patch * patch;
}

void patch_embedding(isa which, const float* pixels, int32_t channels, int32_t height, int32_t width,
                     int32_t patch, const void* weight, dtype wt, int64_t ldw, int64_t dim, float* out,
                     float* columns, int64_t row_begin, int64_t row_end) {
    const int64_t grid_w = width / patch;
    const int64_t K = int64_t(channels) * patch * patch;
    // im2col: row r of `columns` is patch r's pixels in the weight's (channel, y, x) order.
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t py = r / grid_w, px = r % grid_w;
        float* col = columns + (r - row_begin) * K;
        for (int32_t c = 0; c < channels; ++c)
            for (int32_t y = 0; y < patch; ++y) {
                const float* src = pixels + (int64_t(c) * height + py * patch + y) * width + px * patch;
                std::copy(src, src + patch, col + (int64_t(c) * patch + y) * patch);
            }
    }
    if (row_end > row_begin)
        gemm(which, columns, row_end - row_begin, K, K, weight, wt, ldw, out + row_begin * dim, dim, 0, dim);
}

void layer_norm_rows(const float* x, const float* weight, const float* bias, float* y, int64_t rows,
                     int64_t n, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) sum += xr[i];
        const double mean = sum / double(n);
        double ss = 0.0;
        for (int64_t i = 0; i < n; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
        const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
        const float m = float(mean);
        for (int64_t i = 0; i < n; ++i) {
            const float v = (xr[i] - m) * inv * weight[i];
            yr[i] = bias ? v + bias[i] : v;
        }
    }
}

void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < n; ++i) x[r * n + i] += bias[i];
}

void gelu_erf(isa which, float* x, int64_t n) { detail::table_for(which).gelu_erf(x, n); }

void gelu_quick(float* x, int64_t n) {
    // x * sigmoid(1.702 x) = x / (1 + exp(-1.702 x)); exp overflows to inf for very negative
    // x, which gives x / inf = -0, the limit.
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
}

void gated_add(float* y, const float* x, float gate, int64_t n) {
    const float g = std::tanh(gate);
    for (int64_t i = 0; i < n; ++i) y[i] += g * x[i];
}

// indices: query_start [tokens + 1], then context_len [tokens], then block_tables [tokens]
// (every row's one block is block 0: the whole contiguous K and V).
int64_t bidirectional_attention_index_ints(int32_t tokens) { return 3 * int64_t(tokens) + 1; }

void bidirectional_attention_indices(int32_t tokens, const int32_t* key_len, int32_t* indices) {
    int32_t* query_start = indices;
    int32_t* context_len = indices + tokens + 1;
    int32_t* block_tables = context_len + tokens;
    for (int32_t t = 0; t <= tokens; ++t) query_start[t] = t;
    for (int32_t t = 0; t < tokens; ++t) {
        context_len[t] = key_len ? std::clamp(key_len[t], 1, tokens) : tokens;
        block_tables[t] = 0;
    }
}

void bidirectional_attention(isa which, const float* q, const float* k, const float* v, float* out,
                             int32_t tokens, int32_t heads, int32_t head_dim, float scale,
                             const int32_t* indices, int64_t item_begin, int64_t item_end) {
    // Query row t is sequence t with one query at position context_len[t] - 1: the causal rule
    // of the paged kernel then lets it see keys 0 .. context_len[t] - 1, all of them unmasked.
    paged_attention_params p{};
    p.q = q;
    p.out = out;
    p.k_cache = k;
    p.v_cache = v;
    p.kv_dtype = dtype::f32;
    p.query_start = indices;
    p.context_len = indices + tokens + 1;
    p.block_tables = indices + 2 * int64_t(tokens) + 1;
    p.num_seqs = tokens;
    p.num_heads = heads;
    p.num_kv_heads = heads;
    p.head_dim = head_dim;
    p.block_size = tokens;
    p.max_blocks_per_seq = 1;
    p.scale = scale;
    p.sliding_window = 0;
    paged_attention(which, p, item_begin, item_end);
}

}  // namespace llmq::kernels

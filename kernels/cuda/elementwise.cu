// The built-in element-wise kernels of a CUDA device: embedding gather, RMSNorm, the residual
// add fused with the next RMSNorm, RoPE fused with the KV-cache write, SwiGLU, bias add and
// the gather of logit rows. All are memory-bound: one pass (two for the norms, the second
// from L1/L2) with consecutive threads on consecutive elements.
#include <cmath>

#include "block_quant_values.cuh"
#include "device_types.cuh"
#include "llmq/kernels/cuda.hpp"

namespace llmq::kernels::cuda {
namespace {

using detail::is_activation;
using detail::load;
using detail::store;

constexpr int threads = 256;

int64_t blocks_for(int64_t n) {
    const int64_t b = (n + threads - 1) / threads;
    return b < 65535 * 32 ? b : 65535 * 32;
}

// Value i of a row of an embedding table of type t.
__device__ __forceinline__ float table_value(dtype t, const uint8_t* row, int64_t i) {
    switch (t) {
        case dtype::q8_0: return detail::load_q8_0(row, i);
        case dtype::q4_0: return detail::block_quant_value<dtype::q4_0>(row, i);
        case dtype::q4_k: return detail::block_quant_value<dtype::q4_k>(row, i);
        case dtype::q5_k: return detail::block_quant_value<dtype::q5_k>(row, i);
        case dtype::q6_k: return detail::block_quant_value<dtype::q6_k>(row, i);
        default: return load(t, row, i);
    }
}

__global__ void embedding_gather_kernel(dtype table_t, const uint8_t* table, int64_t ld_bytes, int64_t vocab_begin,
                                        int64_t vocab, const int32_t* tokens, int64_t n, dtype act, void* out) {
    const int64_t row = blockIdx.x;
    const int64_t local = int64_t(tokens[row]) - vocab_begin;
    const bool here = local >= 0 && local < vocab;
    const uint8_t* src = table + (here ? local : 0) * ld_bytes;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = 0.0f;
        if (here) v = table_value(table_t, src, i);
        store(act, out, row * n + i, v);
    }
}

__global__ void add_kernel(dtype act, void* y, const void* x, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        store(act, y, i, load(act, y, i) + load(act, x, i));
}

__global__ void scaled_add_kernel(dtype act, void* y, const void* x, float scale, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        store(act, y, i, load(act, y, i) + scale * load(act, x, i));
}

__global__ void kv_write_kernel(dtype act, const void* k, const void* v, dtype kv_t, void* k_cache, void* v_cache,
                                const int64_t* slots, int64_t num_slots, int64_t row_values) {
    const int64_t t = blockIdx.x;
    const int64_t slot = slots[t];
    if (slot < 0 || slot >= num_slots) return;
    for (int64_t i = threadIdx.x; i < row_values; i += blockDim.x) {
        store(kv_t, k_cache, slot * row_values + i, load(act, k, t * row_values + i));
        store(kv_t, v_cache, slot * row_values + i, load(act, v, t * row_values + i));
    }
}

// One block per row; the row's sum of squares in f32 (tolerance: a few ulp of sqrt(n)).
__global__ void rms_norm_kernel(dtype act, const void* x, const float* weight, void* y, int64_t n, float eps) {
    __shared__ float scratch[33];
    const int64_t base = int64_t(blockIdx.x) * n;
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = load(act, x, base + i);
        squares += v * v;
    }
    const float inv = rsqrtf(detail::block_sum(squares, scratch) / float(n) + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        store(act, y, base + i, load(act, x, base + i) * inv * weight[i]);
}

// Each thread re-reads only the residual elements it wrote itself, so no barrier is needed
// between the add and the second pass.
__global__ void add_rms_norm_kernel(dtype act, void* residual, const void* delta, const float* weight, void* normed,
                                    int64_t n, float eps) {
    __shared__ float scratch[33];
    const int64_t base = int64_t(blockIdx.x) * n;
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        store(act, residual, base + i, load(act, residual, base + i) + load(act, delta, base + i));
        const float rounded = load(act, residual, base + i);
        squares += rounded * rounded;
    }
    const float inv = rsqrtf(detail::block_sum(squares, scratch) / float(n) + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        store(act, normed, base + i, load(act, residual, base + i) * inv * weight[i]);
}

// One block per token; thread j handles rotation pair j of every head in turn. The pair's
// angle is computed once per thread in double (as kernels::rope), then applied to the q heads
// in place and to the k heads on their way into the cache; v is copied alongside.
__global__ void rope_kv_write_kernel(rope_kv_write_args a) {
    const int64_t t = blockIdx.x;
    const int32_t half = a.head_dim / 2;
    const int64_t slot = a.slots != nullptr ? a.slots[t] : -1;
    const bool write = slot >= 0 && slot < a.num_slots;
    const double position = double(a.positions[t]);
    for (int32_t i = threadIdx.x; i < half; i += blockDim.x) {
        double angle = position * double(a.freq_scale) * pow(double(a.theta), -2.0 * double(i) / double(a.head_dim));
        if (a.freq_factors != nullptr) angle /= double(a.freq_factors[i]);
        double sine, cosine;
        sincos(angle, &sine, &cosine);
        const int32_t first = a.neox ? i : 2 * i;
        const int32_t second = a.neox ? i + half : 2 * i + 1;
        for (int32_t h = 0; h < a.num_heads; ++h) {
            const int64_t row = (t * a.num_heads + h) * a.head_dim;
            const double x0 = load(a.act, a.q, row + first), x1 = load(a.act, a.q, row + second);
            store(a.act, a.q, row + first, float(x0 * cosine - x1 * sine));
            store(a.act, a.q, row + second, float(x0 * sine + x1 * cosine));
        }
        if (!write) continue;
        for (int32_t h = 0; h < a.num_kv_heads; ++h) {
            const int64_t row = (t * a.num_kv_heads + h) * a.head_dim;
            const int64_t cache_row = (slot * a.num_kv_heads + h) * a.head_dim;
            const double x0 = load(a.act, a.k, row + first), x1 = load(a.act, a.k, row + second);
            store(a.kv_t, a.k_cache, cache_row + first, float(x0 * cosine - x1 * sine));
            store(a.kv_t, a.k_cache, cache_row + second, float(x0 * sine + x1 * cosine));
            store(a.kv_t, a.v_cache, cache_row + first, load(a.act, a.v, row + first));
            store(a.kv_t, a.v_cache, cache_row + second, load(a.act, a.v, row + second));
        }
    }
}

__global__ void swiglu_kernel(dtype act, const void* gate, const void* up, int64_t ld_in, void* out, int64_t ld_out,
                              int64_t rows, int64_t n) {
    const int64_t total = rows * n;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / n, i = e % n;
        const float g = load(act, gate, r * ld_in + i);
        store(act, out, r * ld_out + i, g / (1.0f + expf(-g)) * load(act, up, r * ld_in + i));
    }
}

__global__ void bias_add_kernel(dtype act, void* y, int64_t ld, const float* bias, int64_t rows, int64_t n) {
    const int64_t total = rows * n;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / n, i = e % n;
        store(act, y, r * ld + i, load(act, y, r * ld + i) + bias[i]);
    }
}

__global__ void gather_rows_kernel(dtype in_t, const void* x, int64_t ld_x, int64_t x_rows, const int32_t* rows,
                                   int64_t n, dtype out_t, void* out) {
    const int64_t i = blockIdx.x;
    const int64_t row = rows[i];
    const bool valid = row >= 0 && row < x_rows;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x)
        store(out_t, out, i * n + c, valid ? load(in_t, x, row * ld_x + c) : NAN);
}

__global__ void convert_kernel(dtype in_t, const void* x, dtype out_t, void* y, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        store(out_t, y, i, load(in_t, x, i));
}

__global__ void sum_rows_in_order_kernel(const float* rows, int32_t count, int64_t stride, float* y, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        float sum = rows[i];
        for (int32_t r = 1; r < count; ++r) sum += rows[r * stride + i];
        y[i] = sum;
    }
}

}  // namespace

cudaError_t embedding_gather(dtype table_t, const void* table, int64_t ld_bytes, int64_t vocab_begin, int64_t vocab,
                             const int32_t* tokens, int64_t count, int64_t n, dtype act, void* out, cudaStream_t stream) {
    if (!is_activation(act) || !(is_activation(table_t) || table_t == dtype::q8_0 || detail::is_block_quant(table_t)))
        return cudaErrorInvalidValue;
    if (count <= 0 || n <= 0) return cudaSuccess;
    embedding_gather_kernel<<<unsigned(count), threads, 0, stream>>>(
        table_t, static_cast<const uint8_t*>(table), ld_bytes, vocab_begin, vocab, tokens, n, act, out);
    return detail::launched();
}

cudaError_t add(dtype act, void* y, const void* x, int64_t n, cudaStream_t stream) {
    if (!is_activation(act)) return cudaErrorInvalidValue;
    if (n <= 0) return cudaSuccess;
    add_kernel<<<unsigned(blocks_for(n)), threads, 0, stream>>>(act, y, x, n);
    return detail::launched();
}

cudaError_t scaled_add(dtype act, void* y, const void* x, float scale, int64_t n, cudaStream_t stream) {
    if (!is_activation(act)) return cudaErrorInvalidValue;
    if (n <= 0) return cudaSuccess;
    scaled_add_kernel<<<unsigned(blocks_for(n)), threads, 0, stream>>>(act, y, x, scale, n);
    return detail::launched();
}

cudaError_t rms_norm(dtype act, const void* x, const float* weight, void* y, int64_t rows, int64_t n, float eps,
                     cudaStream_t stream) {
    if (!is_activation(act)) return cudaErrorInvalidValue;
    if (rows <= 0 || n <= 0) return cudaSuccess;
    rms_norm_kernel<<<unsigned(rows), threads, 0, stream>>>(act, x, weight, y, n, eps);
    return detail::launched();
}

cudaError_t add_rms_norm(dtype act, void* residual, const void* delta, const float* weight, void* normed,
                         int64_t rows, int64_t n, float eps, cudaStream_t stream) {
    if (!is_activation(act)) return cudaErrorInvalidValue;
    if (rows <= 0 || n <= 0) return cudaSuccess;
    add_rms_norm_kernel<<<unsigned(rows), threads, 0, stream>>>(act, residual, delta, weight, normed, n, eps);
    return detail::launched();
}

cudaError_t rope_kv_write(const rope_kv_write_args& args, cudaStream_t stream) {
    if (!is_activation(args.act) || !is_activation(args.kv_t) || args.head_dim <= 0 || args.head_dim % 2 != 0 ||
        args.head_dim > 1024)
        return cudaErrorInvalidValue;
    if (args.tokens <= 0) return cudaSuccess;
    const int block = args.head_dim / 2 < 32 ? 32 : (args.head_dim / 2 + 31) / 32 * 32;
    rope_kv_write_kernel<<<unsigned(args.tokens), block, 0, stream>>>(args);
    return detail::launched();
}

cudaError_t rope(dtype act, void* x, int64_t tokens, int32_t heads, int32_t head_dim, const int32_t* positions,
                 float theta, float freq_scale, bool neox, cudaStream_t stream, const float* freq_factors) {
    rope_kv_write_args a{};
    a.act = act;
    a.q = x;
    a.kv_t = act;
    a.positions = positions;
    a.tokens = tokens;
    a.num_heads = heads;
    a.head_dim = head_dim;
    a.theta = theta;
    a.freq_scale = freq_scale;
    a.neox = neox;
    a.freq_factors = freq_factors;
    return rope_kv_write(a, stream);
}

cudaError_t kv_write(dtype act, const void* k, const void* v, dtype kv_t, void* k_cache, void* v_cache,
                     const int64_t* slots, int64_t num_slots, int64_t tokens, int64_t row_values, cudaStream_t stream) {
    if (!is_activation(act) || !is_activation(kv_t)) return cudaErrorInvalidValue;
    if (tokens <= 0 || row_values <= 0) return cudaSuccess;
    kv_write_kernel<<<unsigned(tokens), threads, 0, stream>>>(act, k, v, kv_t, k_cache, v_cache, slots, num_slots,
                                                              row_values);
    return detail::launched();
}

cudaError_t swiglu(dtype act, const void* gate, const void* up, int64_t ld_in, void* out, int64_t ld_out,
                   int64_t rows, int64_t n, cudaStream_t stream) {
    if (!is_activation(act)) return cudaErrorInvalidValue;
    if (rows <= 0 || n <= 0) return cudaSuccess;
    swiglu_kernel<<<unsigned(blocks_for(rows * n)), threads, 0, stream>>>(act, gate, up, ld_in, out, ld_out, rows, n);
    return detail::launched();
}

cudaError_t bias_add(dtype act, void* y, int64_t ld, const float* bias, int64_t rows, int64_t n, cudaStream_t stream) {
    if (!is_activation(act)) return cudaErrorInvalidValue;
    if (rows <= 0 || n <= 0) return cudaSuccess;
    bias_add_kernel<<<unsigned(blocks_for(rows * n)), threads, 0, stream>>>(act, y, ld, bias, rows, n);
    return detail::launched();
}

cudaError_t gather_rows(dtype in_t, const void* x, int64_t ld_x, int64_t x_rows, const int32_t* rows, int64_t count,
                        int64_t n, dtype out_t, void* out, cudaStream_t stream) {
    if (!is_activation(in_t) || !is_activation(out_t)) return cudaErrorInvalidValue;
    if (count <= 0 || n <= 0) return cudaSuccess;
    gather_rows_kernel<<<unsigned(count), threads, 0, stream>>>(in_t, x, ld_x, x_rows, rows, n, out_t, out);
    return detail::launched();
}

cudaError_t convert(dtype in_t, const void* x, dtype out_t, void* y, int64_t n, cudaStream_t stream) {
    if (!is_activation(in_t) || !is_activation(out_t)) return cudaErrorInvalidValue;
    if (n <= 0) return cudaSuccess;
    convert_kernel<<<unsigned(blocks_for(n)), threads, 0, stream>>>(in_t, x, out_t, y, n);
    return detail::launched();
}

cudaError_t sum_rows_in_order(const float* rows, int32_t count, int64_t stride, float* y, int64_t n,
                              cudaStream_t stream) {
    if (count <= 0 || stride < n) return cudaErrorInvalidValue;
    if (n <= 0) return cudaSuccess;
    sum_rows_in_order_kernel<<<unsigned(blocks_for(n)), threads, 0, stream>>>(rows, count, stride, y, n);
    return detail::launched();
}

}  // namespace llmq::kernels::cuda

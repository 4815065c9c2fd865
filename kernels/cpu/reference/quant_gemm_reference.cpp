// Scalar reference GEMM for block-quantized weights, with the two paths every ISA follows:
//  * M <= quant_integer_max_rows(wt): x quantized per 32 values (quant_activations.hpp); each
//    weight chunk unpacked once and dotted in integers with every x row, then scaled by
//    d_w * d_x per 32 values in f32, and the mins subtracted through the group sums;
//  * larger M: weight rows dequantized exactly to f32, a slab at a time, and the f32
//    reference GEMM run on them.
#include <cmath>

#include "../quant_activations.hpp"
#include "../quant_chunk.hpp"
#include "llmq/kernels/quant_blocks.hpp"
#include "reference_kernels.hpp"

namespace llmq::kernels::reference {
namespace {

float round_clamped_127(float v) {
    const float r = std::nearbyint(v);
    if (!(r == r)) return 0.0f;
    return r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r);
}

float chunk_dot(const detail::quant_chunk& c, int values, const int8_t* xq, const float* xd,
                const float* xs) {
    float acc = 0.0f, acc_min = 0.0f;
    for (int i = 0; i < values / 32; ++i) {
        int32_t isum = 0;
        for (int h = 0; h < 2; ++h) {
            const int g = 2 * i + h;
            int32_t s = 0;
            for (int l = 0; l < 16; ++l) s += int32_t(c.q[16 * g + l]) * xq[16 * g + l];
            isum += s * c.scale[g];
        }
        acc += (c.d[i] * xd[i]) * float(isum);
        if (c.has_min) acc_min += c.min[2 * i] * xs[2 * i] + c.min[2 * i + 1] * xs[2 * i + 1];
    }
    return acc - acc_min;
}

thread_local detail::quantized_rows x_rows;
thread_local detail::scratch_buffer slab;

}  // namespace

void quantize_activations(const float* x, int64_t K, int8_t* q, float* d, float* sum16) {
    for (int64_t b = 0; b < K / 32; ++b) {
        const float* xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::fabs(xb[i]) > amax ? std::fabs(xb[i]) : amax;
        const float db = amax / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (int h = 0; h < 2; ++h) {
            int32_t s = 0;
            for (int i = 16 * h; i < 16 * h + 16; ++i) {
                q[32 * b + i] = int8_t(round_clamped_127(xb[i] * id));
                s += q[32 * b + i];
            }
            sum16[2 * b + h] = db * float(s);
        }
    }
}

void quant_gemm_unbuffered(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                           int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    const int64_t per_block = block_values(wt);
    float values[detail::chunk_values];
    for (int64_t n = n_begin; n < n_end; ++n) {
        const auto* row = static_cast<const uint8_t*>(w) + n * ldw;
        for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = 0.0f;
        for (int64_t k = 0; k < K; k += detail::chunk_values) {
            const int64_t count = K - k >= detail::chunk_values ? detail::chunk_values : K - k;
            dequantize_blocks(wt, row + k / per_block * block_bytes(wt), values, count);
            for (int64_t m = 0; m < M; ++m) {
                float sum = 0.0f;
                for (int64_t i = 0; i < count; ++i) sum += x[m * ldx + k + i] * values[i];
                y[m * ldy + n] += sum;
            }
        }
    }
}

void quant_gemm(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    const auto* bytes = static_cast<const uint8_t*>(w);
    const int64_t per_block = block_values(wt);
    if (M > detail::quant_integer_max_rows(wt)) {
        const int64_t rows = 16;
        auto* f32_rows = static_cast<float*>(slab.reserve(std::size_t(rows * K) * sizeof(float)));
        if (f32_rows == nullptr) return quant_gemm_unbuffered(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
        for (int64_t n0 = n_begin; n0 < n_end; n0 += rows) {
            const int64_t count = n_end - n0 < rows ? n_end - n0 : rows;
            for (int64_t r = 0; r < count; ++r) dequantize_blocks(wt, bytes + (n0 + r) * ldw, f32_rows + r * K, K);
            gemm(x, M, K, ldx, f32_rows, dtype::f32, K * 4, y + n0, ldy, 0, count);
        }
        return;
    }
    if (!x_rows.resize(M, K)) return quant_gemm_unbuffered(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
    for (int64_t m = 0; m < M; ++m)
        quantize_activations(x + m * ldx, K, x_rows.q + m * K, x_rows.d + m * (K / 32), x_rows.sum16 + m * (K / 16));
    detail::quant_chunk chunk;
    for (int64_t n = n_begin; n < n_end; ++n) {
        const uint8_t* row = bytes + n * ldw;
        float sums[32] = {};  // gemm_integer_max_rows of every type is at most 32
        static_assert(detail::quant_integer_max_rows(dtype::q4_k) <= 32 && detail::quant_integer_max_rows(dtype::q5_k) <= 32);
        for (int64_t k = 0; k < K; k += detail::chunk_values) {
            const int values = int(K - k >= detail::chunk_values ? detail::chunk_values : K - k);
            detail::unpack_chunk(wt, row + k / per_block * block_bytes(wt), values, chunk);
            for (int64_t m = 0; m < M; ++m)
                sums[m] += chunk_dot(chunk, values, x_rows.q_row(m) + k, x_rows.d_row(m) + k / 32,
                                     x_rows.sum_row(m) + k / 16);
        }
        for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = sums[m];
    }
}

}  // namespace llmq::kernels::reference

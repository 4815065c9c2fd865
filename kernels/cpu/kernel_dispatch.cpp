// The public kernel functions: each forwards to the table of the ISA asked for (or the best
// one), and the few kernels that need no vector variant live here in plain C++.
#include <cmath>
#include <vector>

#include "kernel_table.hpp"
#include "llmq/kernels/q8_0_int8.hpp"
#include "reference/reference_kernels.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/gemm_units.hpp"
#include "llmq/kernels/quant_blocks.hpp"

namespace llmq::kernels {

using detail::table_for;

void gemm(isa which, const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
          int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    if (M <= 0 || n_begin >= n_end) return;
    if (is_block_quantized(wt)) return table_for(which).quant_gemm(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
    if (M <= gemm_integer_max_rows(wt)) return gemm_q8_0_int8(which, x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
    table_for(which).gemm(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
}

void gemm_bf16_dot(isa which, const uint16_t* x, int64_t M, int64_t K, int64_t ldx,
                   const void* w, int64_t ldw, float* y, int64_t ldy, int64_t n_begin,
                   int64_t n_end) {
    if (M <= 0 || n_begin >= n_end) return;
    const detail::kernel_table& table = table_for(which);
    if (table.gemm_bf16_dot != nullptr) {
        table.gemm_bf16_dot(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
        return;
    }
    // No bf16 dot product on this ISA: widen x (exact) and use the f32 kernel.
    std::vector<float> wide(static_cast<std::size_t>(M * K));
    for (int64_t m = 0; m < M; ++m) table.row_to_f32(dtype::bf16, x + m * ldx, &wide[m * K], K);
    table.gemm(wide.data(), M, K, K, w, dtype::bf16, ldw, y, ldy, n_begin, n_end);
}

const char* gemm_path(isa which, dtype wt, int64_t M) {
    const isa used = usable_isa(which);
    if (used == isa::scalar) return "scalar reference";
    if (M <= gemm_integer_max_rows(wt)) {
        const bool vnni = used >= isa::avx512_bf16;
        if (gemm_integer_max_rows(wt) > 3 || wt == dtype::q2_k)  // the types with a decoder of their own
            return vnni ? "int8 dots in registers, AVX-512 VNNI (vpdpbusd)" : "int8 dots in registers, vpmaddubsw";
        return "int8 dots on an unpacked chunk, vpmaddubsw";
    }
    if (used >= isa::avx512_bf16 && quant_prefill_is_integer(wt, 256))
        return "int8 dots in registers, AVX-512 VNNI (vpdpbusd), 4-row tiles (rows of a multiple of 256)";
    if (is_block_quantized(wt)) return "dequantized f32 slabs into packed panels";
    if (M <= detail::gemm_direct_max_m) return "direct row tiles";
    if (M <= detail::gemm_small_max_m)
        return wt == dtype::q8_0 ? "small-M direct tiles, columns outermost"
                                 : "small-M: one row tile streams the weights, the others reuse them widened in L1";
    if (wt == dtype::q8_0 && used == isa::amx)
        return "AMX INT8 tiles (tdpbssd) on x quantized per block, 16 x 16 int32 tiles per block";
    if (wt == dtype::q8_0 && used >= isa::avx512_bf16)
        return "outer-product panels, int8 dots (vpdpbusd) on x quantized per block";
    return "packed panels";
}

bool gemm_quantizes_x(isa which, dtype wt, int64_t M, int64_t K) {
    const isa used = usable_isa(which);
    if (M <= gemm_integer_max_rows(wt)) return true;
    if (used >= isa::avx512_bf16 && quant_prefill_is_integer(wt, K)) return true;
    return wt == dtype::q8_0 && used >= isa::avx512_bf16 && M > detail::gemm_small_max_m;
}

void gemm_q8_0_int8(isa which, const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw,
                    float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    if (M <= 0 || n_begin >= n_end) return;
    const auto* wb = static_cast<const uint8_t*>(w);
    switch (usable_isa(which)) {
#if defined(LLMQ_KERNELS_HAVE_AVX512_BF16)
        case isa::amx:  // AMX takes the prefill only (gemm_amx.cpp); these rows are VNNI's
        case isa::avx512_bf16: return avx512_bf16::gemm_q8_0_int8(x, M, K, ldx, wb, ldw, y, ldy, n_begin, n_end);
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX512)
        case isa::avx512: return avx512::gemm_q8_0_int8(x, M, K, ldx, wb, ldw, y, ldy, n_begin, n_end);
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX2)
        case isa::avx2: return avx2::gemm_q8_0_int8(x, M, K, ldx, wb, ldw, y, ldy, n_begin, n_end);
#endif
        default: return reference::gemm_q8_0_int8(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
    }
}

const char* gemm_q8_0_int8_path(isa which) {
    switch (usable_isa(which)) {
        case isa::amx:
        case isa::avx512_bf16: return "AVX-512 VNNI (vpdpbusd)";
        case isa::avx512: return "AVX-512 (vpmaddubsw; no VNNI)";
        case isa::avx2: return "AVX2 (vpmaddubsw)";
        default: return "scalar reference";
    }
}

int64_t gemm_column_grain(int64_t M, int64_t N, int64_t K) {
    (void)M;
    (void)K;
    // 64 columns: a multiple of every column tile (4 and 8), small enough that N = 2048 gives
    // 32 grains to balance over a few cores, large enough that a grain of a decode GEMV
    // streams >= 128 KiB of weights.
    return N >= 256 ? 64 : 16;
}

void paged_attention(isa which, const paged_attention_params& p, int64_t item_begin,
                     int64_t item_end) {
    if (item_begin >= item_end) return;
    table_for(which).paged_attention(p, item_begin, item_end);
}

void rms_norm_rows(isa which, const float* x, const float* weight, float* y, int64_t rows,
                   int64_t n, float eps) {
    table_for(which).rms_norm_rows(x, weight, y, rows, n, eps);
}
void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                   float eps) {
    rms_norm_rows(best_isa(), x, weight, y, rows, n, eps);
}
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps) {
    rms_norm_rows(best_isa(), x, weight, y, 1, n, eps);
}

void swiglu(isa which, const float* gate, const float* up, float* out, int64_t n) {
    table_for(which).swiglu(gate, up, out, n);
}
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    swiglu(best_isa(), gate, up, out, n);
}

void softmax(isa which, float* x, int64_t n) { table_for(which).softmax(x, n); }
void softmax(float* x, int64_t n) { softmax(best_isa(), x, n); }

void add_inplace(isa which, float* y, const float* x, int64_t n) {
    table_for(which).add_inplace(y, x, n);
}
void add_inplace(float* y, const float* x, int64_t n) { add_inplace(best_isa(), y, x, n); }

void row_to_f32(isa which, dtype t, const void* src, float* dst, int64_t n) {
    table_for(which).row_to_f32(t, src, dst, n);
}
void row_to_f32(dtype t, const void* src, float* dst, int64_t n) {
    row_to_f32(best_isa(), t, src, dst, n);
}

void row_from_f32(isa which, dtype t, const float* src, void* dst, int64_t n) {
    table_for(which).row_from_f32(t, src, dst, n);
}
void row_from_f32(dtype t, const float* src, void* dst, int64_t n) {
    row_from_f32(best_isa(), t, src, dst, n);
}

void embedding_row(dtype t, const void* table, int64_t ld, int64_t token, float* dst,
                   int64_t n) {
    row_to_f32(t, static_cast<const uint8_t*>(table) + token * ld, dst, n);
}

void rope(float* x, int32_t num_heads, int32_t head_dim, int32_t pos, float theta,
          float freq_scale, bool neox, const float* freq_factors) {
    // Angles in double: pos * theta^(-2i/d) reaches thousands of radians, where f32 would
    // lose ~1e-4 rad. cos/sin of 64 pair frequencies at a time are applied to every head.
    constexpr int32_t chunk = 64;
    const int32_t half = head_dim / 2;
    double cosines[chunk], sines[chunk];
    for (int32_t i0 = 0; i0 < half; i0 += chunk) {
        const int32_t count = half - i0 < chunk ? half - i0 : chunk;
        for (int32_t c = 0; c < count; ++c) {
            const double exponent = -2.0 * double(i0 + c) / double(head_dim);
            double angle = double(pos) * double(freq_scale) * std::pow(double(theta), exponent);
            if (freq_factors) angle /= double(freq_factors[i0 + c]);
            cosines[c] = std::cos(angle);
            sines[c] = std::sin(angle);
        }
        for (int32_t h = 0; h < num_heads; ++h) {
            float* head = x + int64_t(h) * head_dim;
            for (int32_t c = 0; c < count; ++c) {
                const int32_t i = i0 + c;
                float* a = neox ? &head[i] : &head[2 * i];
                float* b = neox ? &head[i + half] : &head[2 * i + 1];
                const double x0 = *a, x1 = *b;
                *a = float(x0 * cosines[c] - x1 * sines[c]);
                *b = float(x0 * sines[c] + x1 * cosines[c]);
            }
        }
    }
}

}  // namespace llmq::kernels

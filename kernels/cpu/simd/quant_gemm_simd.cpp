// GEMM / GEMV for block-quantized weights (quant_blocks.hpp) on one ISA; the same two paths as
// the scalar reference (reference/quant_gemm_reference.cpp):
//
//  * decode (M <= quant_integer_max_rows(wt)): x is quantized per 32 values once per call
//    (quant_activations.hpp). Each weight row is read once, a chunk of 256 values at a time:
//    the chunk's bytes are unpacked in registers into signed int8 values (quant_chunk.hpp) and
//    every x row is dotted with them by vpmaddubsw on (|q|, sign(x, q)) (products of a u8 and
//    an s8, |q| <= 128 and |x| <= 127, so a pair sum never saturates int16), vpmaddwd by the
//    groups' integer scales (low 128 bits: group 2i, high: group 2i + 1), then one f32 FMA per
//    32 values with d_w * d_x. Mins are subtracted once per chunk from the x group sums.
//  * prefill (larger M): rows dequantized exactly (the mul, then the subtraction, never fused)
//    into an f32 slab that stays in L2 (q2_k .. q6_k, iq4_xs and the legacy 32-value types,
//    rows a multiple of 256, by the decoders of quant_dot_simd.cpp), and the f32 GEMM of this
//    ISA run on the slab.
//
// This file's integer path serves what quant_dot_simd.cpp leaves (the k-quants' rows that are
// not a multiple of 256 values, which no valid file has) in tiles of up to 3 rows, and any
// type when quant_dot has no memory (q4_0 is unpacked with vector code, the others by the
// scalar unpacking, which gives the same chunk).
#include <cstring>

#include "../quant_activations.hpp"
#include "../quant_chunk.hpp"
#include "../reference/reference_kernels.hpp"
#include "llmq/kernels/quant_blocks.hpp"
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

using detail::chunk_values;
using detail::quant_chunk;
constexpr int MAX_ROWS = int(detail::quant_integer_tile_rows);

// ---- activations

void quantize_activations(const float* x, int64_t K, int8_t* q, float* d, float* sum16) {
    for (int64_t b = 0; b < K / 32; ++b) {
        const float* xb = x + 32 * b;
        vf amax = vzero();
        for (int i = 0; i < 32; i += W) amax = vmax(amax, vabs(vload(xb + i)));
        const float db = vhmax(amax) / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        int8_t* qb = q + 32 * b;
        for (int i = 0; i < 32; i += W) vstore_q8(qb + i, vmul(vload(xb + i), vset1(id)));
        for (int h = 0; h < 2; ++h) {
            int32_t s = 0;
            for (int i = 16 * h; i < 16 * h + 16; ++i) s += qb[i];
            sum16[2 * b + h] = db * float(s);
        }
    }
}

// ---- vector unpacking of q4_0 (the scalar one in quant_decode.cpp is the spec; q3_k .. q6_k,
// iq4_xs and q8_0 have their own decoders in quant_dot_simd.cpp)

void unpack_q4_0(const uint8_t* b, int values, quant_chunk& c) {
    c.has_min = false;
    const __m128i mask = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int i = 0; i < values / 32; ++i, b += 18) {
        c.d[i] = half_to_float(b);
        c.scale[2 * i] = c.scale[2 * i + 1] = 1;
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, mask), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), mask), eight);
        _mm_store_si128(reinterpret_cast<__m128i*>(c.q + 32 * i), lo);
        _mm_store_si128(reinterpret_cast<__m128i*>(c.q + 32 * i + 16), hi);
    }
}

void unpack(dtype t, const uint8_t* blocks, int values, quant_chunk& c) {
    switch (t) {
        case dtype::q4_0: return unpack_q4_0(blocks, values, c);
        default: return detail::unpack_chunk(t, blocks, values, c);
    }
}

// ---- the integer dot of one chunk with up to MAX_ROWS x rows

inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

struct x_views {
    const int8_t* q[MAX_ROWS];
    const float* d[MAX_ROWS];
    const float* sum[MAX_ROWS];
};

template <int rows>
inline void chunk_dot(const quant_chunk& c, int values, const x_views& x, int64_t k, __m256 (&acc)[rows],
                      __m256 (&acc_min)[rows]) {
    // Scale pair (group 2i, group 2i + 1) broadcast as int16 to the low and high 128 bits.
    const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int i = 0; i < values / 32; ++i) {
        const __m256i qv = _mm256_load_si256(reinterpret_cast<const __m256i*>(c.q + 32 * i));
        const __m256i magnitude = _mm256_abs_epi8(qv);
        int32_t pair;
        std::memcpy(&pair, &c.scale[2 * i], 4);
        const __m256i scales = _mm256_shuffle_epi8(_mm256_set1_epi32(pair), pick);
#pragma GCC unroll 3
        for (int m = 0; m < rows; ++m) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q[m] + k + 32 * i));
            const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xv, qv));
            const __m256i sums = _mm256_madd_epi16(pairs, scales);
            acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(c.d[i] * x.d[m][k / 32 + i]), acc[m]);
        }
    }
    if (!c.has_min) return;
    if (values == chunk_values) {
        for (int m = 0; m < rows; ++m)
            for (int h = 0; h < 2; ++h)
                acc_min[m] = _mm256_fmadd_ps(_mm256_loadu_ps(c.min + 8 * h), _mm256_loadu_ps(x.sum[m] + k / 16 + 8 * h),
                                             acc_min[m]);
        return;
    }
    for (int m = 0; m < rows; ++m) {
        float s = 0.0f;
        for (int g = 0; g < values / 16; ++g) s += c.min[g] * x.sum[m][k / 16 + g];
        acc_min[m] = _mm256_add_ps(acc_min[m], _mm256_setr_ps(s, 0, 0, 0, 0, 0, 0, 0));
    }
}

thread_local detail::quantized_rows x_rows;
thread_local detail::scratch_buffer slab;

template <int rows>
void gemm_integer(const float* x, int64_t K, int64_t ldx, const uint8_t* w, dtype wt, int64_t ldw,
                  float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    if (!x_rows.resize(rows, K))
        return reference::quant_gemm_unbuffered(x, rows, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
    x_views xv{};
    for (int m = 0; m < rows; ++m) {
        quantize_activations(x + m * ldx, K, x_rows.q + m * K, x_rows.d + m * (K / 32), x_rows.sum16 + m * (K / 16));
        xv.q[m] = x_rows.q_row(m);
        xv.d[m] = x_rows.d_row(m);
        xv.sum[m] = x_rows.sum_row(m);
    }
    const int64_t chunk_bytes = detail::chunk_bytes_of(wt);
    quant_chunk chunk;
    for (int64_t n = n_begin; n < n_end; ++n) {
        const uint8_t* row = w + n * ldw;
        __m256 acc[rows], acc_min[rows];
        for (int m = 0; m < rows; ++m) acc[m] = acc_min[m] = _mm256_setzero_ps();
        for (int64_t k = 0, offset = 0; k < K; k += chunk_values, offset += chunk_bytes) {
            // The next chunks' lines, a few hundred bytes ahead of the decoder (rows follow
            // each other, so near a row's end this reaches into the next row: still useful).
            for (int64_t line = 0; line < chunk_bytes; line += 64)
                _mm_prefetch(reinterpret_cast<const char*>(row + offset + 4 * chunk_bytes + line), _MM_HINT_T0);
            const int values = int(K - k >= chunk_values ? chunk_values : K - k);
            unpack(wt, row + offset, values, chunk);
            chunk_dot<rows>(chunk, values, xv, k, acc, acc_min);
        }
        for (int m = 0; m < rows; ++m) y[m * ldy + n] = hsum256(acc[m]) - hsum256(acc_min[m]);
    }
}

// ---- prefill: exact dequantization into an f32 slab

void chunk_to_floats(const quant_chunk& c, int values, float* dst) {
    for (int g = 0; g < values / 16; ++g) {
        const vf factor = vset1(c.d[g / 2] * float(c.scale[g]));
        for (int l = 0; l < 16; l += W) {
            vf v = vmul(factor, vload_i8(c.q + 16 * g + l));
            if (c.has_min) {
                __asm__("" : "+v"(v));  // keep the product rounded on its own, as the definition
                v = vsub(v, vset1(c.min[g]));
            }
            vstore(dst + 16 * g + l, v);
        }
    }
}

void dequantize_row(dtype wt, const uint8_t* row, int64_t K, float* dst) {
    if (dequantize_row_fast(wt, row, K, dst)) return;
    const int64_t chunk_bytes = detail::chunk_bytes_of(wt);
    quant_chunk chunk;
    for (int64_t k = 0, offset = 0; k < K; k += chunk_values, offset += chunk_bytes) {
        const int values = int(K - k >= chunk_values ? chunk_values : K - k);
        unpack(wt, row + offset, values, chunk);
        chunk_to_floats(chunk, values, dst + k);
    }
}

void gemm_dequantized(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, dtype wt,
                      int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    // About 1 MiB of f32 rows (a multiple of the column tiles), so the slab stays in L2 while
    // the f32 GEMM packs it.
    int64_t rows = (int64_t(1) << 18) / K / 8 * 8;
    rows = rows < 8 ? 8 : (rows > 256 ? 256 : rows);
    auto* f32_rows = static_cast<float*>(slab.reserve(std::size_t(rows * K) * sizeof(float)));
    if (f32_rows == nullptr) return reference::quant_gemm_unbuffered(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
    for (int64_t n0 = n_begin; n0 < n_end; n0 += rows) {
        const int64_t count = n_end - n0 < rows ? n_end - n0 : rows;
        for (int64_t r = 0; r < count; ++r) dequantize_row(wt, w + (n0 + r) * ldw, K, f32_rows + r * K);
        gemm_entry(x, M, K, ldx, f32_rows, dtype::f32, K * 4, y + n0, ldy, 0, count);
    }
}

}  // namespace

void quant_gemm_entry(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w_, dtype wt,
                      int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    const auto* w = static_cast<const uint8_t*>(w_);
#if defined(__AVX512VNNI__)
    // Prefill on VNNI: the same int8 dot products at every M (quant_prefill_is_integer in
    // quant_blocks.hpp), where they beat the f32 GEMM on dequantized slabs.
    if (M > detail::quant_integer_max_rows(wt) && quant_prefill_is_integer(wt, K) &&
        quant_dot(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end))
        return;
#endif
    if (M <= detail::quant_integer_max_rows(wt)) {
        if (quant_dot(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end)) return;
        // No decoder of its own or no memory for x's layout: the
        // chunk path, in tiles of up to MAX_ROWS rows (the same integer sums per row).
        for (int64_t m = 0; m < M; m += MAX_ROWS) {
            const float* xt = x + m * ldx;
            float* yt = y + m * ldy;
            switch (M - m < MAX_ROWS ? M - m : MAX_ROWS) {
                case 1: gemm_integer<1>(xt, K, ldx, w, wt, ldw, yt, ldy, n_begin, n_end); break;
                case 2: gemm_integer<2>(xt, K, ldx, w, wt, ldw, yt, ldy, n_begin, n_end); break;
                default: gemm_integer<3>(xt, K, ldx, w, wt, ldw, yt, ldy, n_begin, n_end); break;
            }
        }
        return;
    }
    gemm_dequantized(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
}

static_assert(MAX_ROWS == 3, "quant_gemm_entry tiles the integer path by 1..3 rows");

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

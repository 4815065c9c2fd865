// Q8_0 GEMM / GEMV with int8 dot products, for one ISA: y[m, n] = sum_k x[m, k] * w[n, k]
// with w in Q8_0 blocks (fp16 d_w + 32 x int8) and x quantised on the fly the same way, per
// row and 32-value block (d_x = max|x| / 127, q = round-to-nearest-even(x / d_x), the Q8_0
// rule of GGUF). Per block the 32 int8 x int8 products are summed exactly in int32, then
// scaled by d_x * d_w and accumulated in f32 — llama.cpp's Q8_0 x Q8_0 dot product. The
// activations' rounding (at most d_x / 2 per value) is the only change against widening the
// weights to f32; the scalar reference (reference/gemm_q8_0_reference.cpp) quantises
// identically, so every ISA sums the same integers.
//
// The int8 dot product of one block pair (eight int32 lanes of four products each):
//  * AVX-512 VNNI (avx512_bf16 variant, -mavx512vnni): vpdpbusd multiplies unsigned by signed
//    bytes, so x is offset to u8 (x + 128) when it is quantised and the offset is taken back
//    by starting the sum at -128 * sum(w), itself one vpdpbusd of the weights with 128s;
//  * AVX2 (and the AVX-512 variant without VNNI): the sign trick, vpmaddubsw(|w|, x * sign(w))
//    (|w| as u8 is exact also for -128; |x| <= 127 so no pair sum saturates), vpmaddwd by 1.
//
// Tiling: MR x NR tiles of (x rows, w rows); per block each w row is loaded once and used by
// all MR rows, each x block by all NR rows. Column tiles are outermost, so a tile's weight
// rows are read from memory once for all M rows (rows of x, quantised, are small and stay in
// L2): M rows cost one weight read plus M x the arithmetic, with no cliff at any M.
#include <cmath>
#include <cstdlib>
#include <new>

#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

#if defined(__AVX512F__)
constexpr int QMR = 4;  // 16 accumulators + 4 x blocks + 4 scales of 32 registers
#else
constexpr int QMR = 2;  // 8 accumulators + 2 x blocks + 2 scales + the weight block of 16
#endif
constexpr int QNR = 4;
constexpr int BLOCK = q8_0_block_values;
constexpr int64_t M_CHUNK = 64;  // rows of x quantised (and kept in L2) at a time

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
constexpr bool use_vnni = true;
#else
constexpr bool use_vnni = false;
#endif

// x rows quantised: q (int8, or u8 = q + 128 for VNNI) rows of K bytes, d per block.
// Plain malloc'd buffers, not std::vector: a template instantiated in this file would be
// compiled with this ISA's flags, and the linker could pick that copy for callers running on
// a CPU without the ISA (kernels_isa_variants_keep_their_symbols_to_themselves checks it).
struct quantised_x {
    int8_t* q = nullptr;
    float* d = nullptr;
    std::size_t q_capacity = 0, d_capacity = 0;
    quantised_x() = default;
    quantised_x(const quantised_x&) = delete;
    quantised_x& operator=(const quantised_x&) = delete;
    ~quantised_x() {
        std::free(q);
        std::free(d);
    }
    // Room for q_values and d_values (contents not kept); false when memory ran out.
    bool reserve(std::size_t q_values, std::size_t d_values) {
        if (q_values > q_capacity) {
            std::free(q);
            q = static_cast<int8_t*>(std::malloc(q_values));
            q_capacity = q ? q_values : 0;
        }
        if (d_values > d_capacity) {
            std::free(d);
            d = static_cast<float*>(std::malloc(d_values * sizeof(float)));
            d_capacity = d ? d_values : 0;
        }
        return q != nullptr && d != nullptr;
    }
};
thread_local quantised_x qx;

void quantise_rows(const float* x, int64_t M, int64_t K, int64_t ldx, quantised_x& out) {
    const int64_t blocks = K / BLOCK;
    if (!out.reserve(std::size_t(M * K), std::size_t(M * blocks))) throw std::bad_alloc();
    for (int64_t m = 0; m < M; ++m) {
        const float* row = x + m * ldx;
        for (int64_t b = 0; b < blocks; ++b) {
            const float* v = row + b * BLOCK;
            __m256 amax = _mm256_setzero_ps();
            const __m256 sign = _mm256_set1_ps(-0.0f);
            for (int i = 0; i < BLOCK; i += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(v + i)));
            __m128 a = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
            a = _mm_max_ps(a, _mm_movehl_ps(a, a));
            a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
            const float d = _mm_cvtss_f32(a) / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            out.d[std::size_t(m * blocks + b)] = d;
            const __m256 idv = _mm256_set1_ps(id);
            __m256i q32[4];
            for (int i = 0; i < 4; ++i)
                q32[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(v + 8 * i), idv),
                                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            // int32 -> int8 in order: packs work within 128-bit lanes, then a permute.
            const __m256i p01 = _mm256_packs_epi32(q32[0], q32[1]);
            const __m256i p23 = _mm256_packs_epi32(q32[2], q32[3]);
            __m256i p = _mm256_packs_epi16(p01, p23);
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            if (use_vnni) p = _mm256_xor_si256(p, _mm256_set1_epi8(char(0x80)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + m * K + b * BLOCK), p);
        }
    }
}

// What one weight block contributes, prepared once per (w row, block) for every x row.
struct w_block {
    __m256i q;     // VNNI: the int8 values; AVX2: |w| as u8
    __m256i aux;   // VNNI: -128 * sum(w) per int32 lane; AVX2: w itself (for the signs)
};

inline w_block prepare(const uint8_t* block) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    w_block b;
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    b.q = w;
    b.aux = _mm256_sub_epi32(_mm256_setzero_si256(),
                             _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(char(0x80)), w));
#else
    b.q = _mm256_abs_epi8(w);
    b.aux = w;
#endif
    return b;
}

// Eight int32 lanes summing to the block's exact integer dot product.
inline __m256i block_dot(__m256i xq, const w_block& w) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(w.aux, xq, w.q);
#else
    const __m256i xs = _mm256_sign_epi8(xq, w.aux);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w.q, xs), _mm256_set1_epi16(1));
#endif
}

inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <int mr_, int nr_>
void tile(const int8_t* xq, const float* xd, int64_t K, const uint8_t* w, int64_t ldw, float* y, int64_t ldy) {
    const int64_t blocks = K / BLOCK;
    __m256 acc[mr_][nr_];
    for (int i = 0; i < mr_; ++i)
        for (int j = 0; j < nr_; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
        __m256i xv[mr_];
        __m256 dx[mr_];
        for (int i = 0; i < mr_; ++i) {
            xv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * K + b * BLOCK));
            dx[i] = _mm256_set1_ps(xd[i * blocks + b]);
        }
        for (int j = 0; j < nr_; ++j) {
            const uint8_t* block = w + j * ldw + b * q8_0_block_bytes;
            _mm_prefetch(reinterpret_cast<const char*>(block + 512), _MM_HINT_T0);
            const w_block wb = prepare(block);
            const __m256 dw = _mm256_set1_ps(half_to_float(block));
            for (int i = 0; i < mr_; ++i) {
                const __m256 dot = _mm256_cvtepi32_ps(block_dot(xv[i], wb));
                acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dot, dw), dx[i], acc[i][j]);
            }
        }
    }
    for (int i = 0; i < mr_; ++i)
        for (int j = 0; j < nr_; ++j) y[i * ldy + j] = hsum256(acc[i][j]);
}

template <int mr_>
void row_tile(int nr, const int8_t* xq, const float* xd, int64_t K, const uint8_t* w, int64_t ldw, float* y,
              int64_t ldy) {
    switch (nr) {
        case 4: return tile<mr_, 4>(xq, xd, K, w, ldw, y, ldy);
        case 3: return tile<mr_, 3>(xq, xd, K, w, ldw, y, ldy);
        case 2: return tile<mr_, 2>(xq, xd, K, w, ldw, y, ldy);
        default: return tile<mr_, 1>(xq, xd, K, w, ldw, y, ldy);
    }
}

}  // namespace

void gemm_q8_0_int8(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                    int64_t ldy, int64_t n_begin, int64_t n_end) {
    const int64_t blocks = K / BLOCK;
    for (int64_t m0 = 0; m0 < M; m0 += M_CHUNK) {
        const int64_t mc = M - m0 < M_CHUNK ? M - m0 : M_CHUNK;
        quantise_rows(x + m0 * ldx, mc, K, ldx, qx);
        for (int64_t n = n_begin; n < n_end; n += QNR) {
            const int nr = static_cast<int>(n_end - n < QNR ? n_end - n : QNR);
            const uint8_t* rows = w + n * ldw;
            for (int64_t m = 0; m < mc; m += QMR) {
                const int8_t* xq = qx.q + m * K;
                const float* xd = qx.d + m * blocks;
                float* yt = y + (m0 + m) * ldy + n;
                switch (mc - m < QMR ? mc - m : QMR) {
#if defined(__AVX512F__)
                    case 4: row_tile<4>(nr, xq, xd, K, rows, ldw, yt, ldy); break;
                    case 3: row_tile<3>(nr, xq, xd, K, rows, ldw, yt, ldy); break;
#endif
                    case 2: row_tile<2>(nr, xq, xd, K, rows, ldw, yt, ldy); break;
                    default: row_tile<1>(nr, xq, xd, K, rows, ldw, yt, ldy); break;
                }
            }
        }
    }
}

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

// Prefill GEMMs on the dot-product units as outer-product micro-kernels over packed panels,
// in the avx512_bf16 library (AVX-512 BF16 and VNNI): Q8_0 weights with more than
// gemm_small_max_m rows (gemm() takes this path by default), and bf16 weights through
// gemm_bf16_dot (opt-in) from BF16_PANEL_MIN_M rows (gemm_simd.cpp). f32, f16 and bf16
// weights in gemm() stay on gemm_packed's f32 FMA tiles, which reach ~0.8 of the FMA peak;
// an f32 FMA variant of these panels measured no faster (docs/benchmarks.md).
//
// y[m, n] = sum_k x[m, k] * w[n, k]. The vector lanes run along n: a panel holds NC = 64
// columns (weight rows) of one K block, step-major (step s: dword s of each of the 64 columns
// side by side), so one step of the micro-kernel loads the four vectors of the step and
// multiplies each by one dword of x broadcast to all lanes, for MR rows of x:
//
//   acc[i][v] += broadcast(x tile row i, step s) (*) panel[s][16 v .. 16 v + 15]
//   i < MR rows, v < 4 vectors of 16 columns; the y tile is MR rows of 64 contiguous columns,
//   stored with no horizontal sums.
//
// A step is one dword of each operand, and (*) is the unit's instruction:
//  * bf16: a pair of bf16 along K. Weights bf16 as stored, x rounded to bf16 by the caller
//          (gemm_bf16_dot); vdpbf16ps adds both products into each f32 lane. MR = 6: 24
//          accumulators, 4 panel loads and 6 broadcasts per 24 vdpbf16ps.
//  * int8: four int8 along K. Q8_0 weights as stored; x quantized per 32-value block on the
//          fly (d = max|x| / 127, q = round(x / d) to nearest even, as the decode path) and
//          offset by 128 to unsigned; vpdpbusd adds four u8 x s8 products into each int32
//          lane. The offset's share, 128 * sum of the block's weights, is the start value of
//          each block's int32 sums; after a block's 8 steps the sums are converted to f32 and
//          added times d_x * d_w. MR = 3 (12 int32 sums + 12 f32 accumulators). Integer sums
//          are exact, so the result is the product of the quantized x, off by the f32
//          rounding of the per-block terms only.
//
// Blocking: a K block is PANEL_STEPS = 128 steps (256 / 512 values), so that a panel is
// 32 KiB (L1). The x block is as many rows as fit 1 MiB (L2) over the whole K, packed once
// into tile-major steps; then panel by panel, every K block of the panel is packed (16
// columns at a time, transposed 16 x 16 dwords from 16 weight rows' loads) and used by every
// row tile, so every weight byte comes from memory once per x block and the panel's y tiles
// stay in cache across its K blocks. While one panel K block is in use, the weight lines of
// the next are prefetched into L2, a few per row tile.
#include <cstring>

#include "../quant_activations.hpp"
#include "panel_prefetch.hpp"
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
#if defined(__AVX512BF16__) && defined(__AVX512VNNI__)
namespace {

constexpr int NV = 4;
constexpr int NC = 16 * NV;
constexpr int64_t PANEL_STEPS = 128;
constexpr int64_t MC = 512;
constexpr int64_t X_BLOCK_DWORDS = 1 << 18;  // the packed x block, 1 MiB (L2)
constexpr int64_t BLOCK_STEPS = q8_0_block_values / 4;  // int8 steps per Q8_0 block
constexpr int64_t PANEL_BLOCKS = PANEL_STEPS / BLOCK_STEPS;

enum class unit { bf16, int8 };

template <unit U>
constexpr int64_t values_per_step = U == unit::bf16 ? 2 : 4;
// Rows of x per tile: 6 x 4 f32 accumulators for bf16; for int8, 3 x 4 int32 sums and 3 x 4
// f32 accumulators.
template <unit U>
constexpr int tile_rows = U == unit::int8 ? 3 : 6;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Per-thread buffers (grown on first use, freed when the thread ends).
struct panel_buffers {
    detail::scratch_buffer x, x_scales, panel, panel_scales, panel_sums;
};
thread_local panel_buffers buffers;

// ---- packing

// dst[s * dst_stride + i] = dword s of r[i] for i, s < 16 (r is overwritten).
inline void transpose16(__m512i (&r)[16], uint32_t* dst, int64_t dst_stride) {
    __m512i t[16];
    // Pairs of rows interleaved by dword, then groups of four by qword: u[4g + c] holds, in
    // 128-bit lane L, column 4L + c of rows 4g .. 4g + 3.
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
        r[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    // Then a 4 x 4 transpose of 128-bit lanes across the groups: column 4L + c is lane L of
    // r[c], r[4 + c], r[8 + c], r[12 + c].
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
        const __m512i x0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44);
        const __m512i x1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xee);
        const __m512i x2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44);
        const __m512i x3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xee);
        _mm512_storeu_si512(dst + c * dst_stride, _mm512_shuffle_i32x4(x0, x2, 0x88));
        _mm512_storeu_si512(dst + (4 + c) * dst_stride, _mm512_shuffle_i32x4(x0, x2, 0xdd));
        _mm512_storeu_si512(dst + (8 + c) * dst_stride, _mm512_shuffle_i32x4(x1, x3, 0x88));
        _mm512_storeu_si512(dst + (12 + c) * dst_stride, _mm512_shuffle_i32x4(x1, x3, 0xdd));
    }
}

// Byte offset of element k in a weight row (bf16, or Q8_0 with k a multiple of 32).
template <unit U>
inline int64_t row_offset(int64_t k) {
    return U == unit::bf16 ? k * 2 : k / q8_0_block_values * q8_0_block_bytes;
}

// Steps [s0, s0 + 16) of a weight row's K block [k0, k0 + kc) (steps past the block zero):
// bf16, pairs of bf16 as stored; int8, Q8_0's q as stored, four to a step (s0 a multiple of
// 16, so two whole blocks or one).
template <unit U>
inline __m512i load_steps(const uint8_t* row, int64_t k0, int64_t kc, int64_t s0) {
    if constexpr (U == unit::bf16) {
        const int64_t n = min64(32, kc - 2 * s0);
        const __mmask32 m = n >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << n) - 1u);
        return _mm512_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + k0 + 2 * s0);
    } else {
        const uint8_t* block = row + (k0 / 4 + s0) / BLOCK_STEPS * q8_0_block_bytes;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
        const __m256i hi = kc / 4 - s0 > BLOCK_STEPS
                               ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q8_0_block_bytes + 2))
                               : _mm256_setzero_si256();
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
}

// Packs columns [0, nr) (weight rows ldw bytes apart) of the K block [k0, k0 + kc) into
// `panel` (steps x NC dwords, 16 columns at a time transposed from 16 rows' loads; the columns
// of a partial last group zero, the groups past it not written: the kernels read them, but
// their y columns are never stored). For int8 also the block scales (scales[b * NC + j], f32)
// and the offset corrections (sums[b * NC + j] = -128 * sum of the block's q), zero past nr.
template <unit U>
void pack_panel(const uint8_t* w, int64_t ldw, int nr, int64_t k0, int64_t kc, int64_t steps,
                uint32_t* panel, float* scales, int32_t* sums) {
    const int groups = (nr + 15) / 16;
    __m512i r[16];
    for (int g = 0; g < groups; ++g)
        for (int64_t s0 = 0; s0 < steps; s0 += 16) {
#pragma GCC unroll 16
            for (int i = 0; i < 16; ++i)
                r[i] = 16 * g + i < nr ? load_steps<U>(w + (16 * g + i) * ldw, k0, kc, s0) : _mm512_setzero_si512();
            transpose16(r, panel + s0 * NC + 16 * g, NC);
        }
    if constexpr (U == unit::int8) {
        // Per block and 16 columns: the fp16 scales gathered into the first half of the
        // block's scale row and widened from the back (so that no bits are overwritten before
        // they are read), and -128 * sum(q) by vpdpbusd of the block's 8 steps with u8 ones.
        const __m512i ones = _mm512_set1_epi8(1);
        for (int64_t b = 0; b < steps / BLOCK_STEPS; ++b) {
            float* row_scales = scales + b * NC;
            auto* bits = reinterpret_cast<uint16_t*>(row_scales);
            for (int j = 0; j < nr; ++j)
                std::memcpy(bits + j, w + j * ldw + (k0 / q8_0_block_values + b) * q8_0_block_bytes, 2);
            for (int g = NC / 16 - 1; g >= 0; --g) {
                const int valid = static_cast<int>(min64(16, nr - 16 * g));
                const __m256i h = valid > 0 ? _mm256_maskz_loadu_epi16(lanes(valid), bits + 16 * g) : _mm256_setzero_si256();
                _mm512_store_ps(row_scales + 16 * g, _mm512_cvtph_ps(h));
                __m512i sum = _mm512_setzero_si512();
                if (g < groups)
                    for (int64_t st = 0; st < BLOCK_STEPS; ++st)
                        sum = _mm512_dpbusd_epi32(sum, ones, _mm512_load_si512(panel + (b * BLOCK_STEPS + st) * NC + 16 * g));
                _mm512_store_si512(sums + b * NC + 16 * g, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-128)));
            }
        }
    }
}

// Packs rows [0, mc) of x (row stride ldx elements), K block [k0, k0 + kc), into tiles of MR
// rows: tile t at xp + t * steps * MR, step s of row i at [s * MR + i]. Rows past mc are not
// written (the kernels for a short tile do not read them). For int8 also the block scales
// (xs + t * blocks * MR, [b * MR + i]).
template <unit U>
void pack_x(const void* x_, int64_t ldx, int64_t mc, int64_t k0, int64_t kc, int64_t steps, uint32_t* xp, float* xs) {
    constexpr int MR = tile_rows<U>;
    alignas(64) uint32_t row_steps[PANEL_STEPS];
    for (int64_t m = 0; m < mc; ++m) {
        uint32_t* tile = xp + (m / MR) * steps * MR + m % MR;
        if constexpr (U == unit::bf16) {
            const uint16_t* row = static_cast<const uint16_t*>(x_) + m * ldx + k0;
            for (int64_t s = 0; s < kc / 2; ++s) std::memcpy(&tile[s * MR], &row[2 * s], 4);
            if (kc % 2 != 0) tile[(steps - 1) * MR] = row[kc - 1];
            continue;
        } else {
            // Quantize per 32 values: d = max|x| / 127, q = round(x * (1 / d)) + 128.
            const float* row = static_cast<const float*>(x_) + m * ldx + k0;
            float* scales = xs + (m / MR) * (steps / BLOCK_STEPS) * MR + m % MR;
            const __m512i bias = _mm512_set1_epi32(128), top = _mm512_set1_epi32(127), bottom = _mm512_set1_epi32(-127);
            for (int64_t b = 0; b < steps / BLOCK_STEPS; ++b) {
                const vf lo = vload(row + b * 32), hi = vload(row + b * 32 + 16);
                const float d = vhmax(vmax(vabs(lo), vabs(hi))) / 127.0f;
                const vf id = vset1(d != 0.0f ? 1.0f / d : 0.0f);
                const __m512i qlo = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(vmul(lo, id)), top), bottom);
                const __m512i qhi = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(vmul(hi, id)), top), bottom);
                _mm_storeu_si128(reinterpret_cast<__m128i*>(row_steps + b * BLOCK_STEPS),
                                 _mm512_cvtepi32_epi8(_mm512_add_epi32(qlo, bias)));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(row_steps + b * BLOCK_STEPS + 4),
                                 _mm512_cvtepi32_epi8(_mm512_add_epi32(qhi, bias)));
                scales[b * MR] = d;
            }
            for (int64_t s = 0; s < steps; ++s) tile[s * MR] = row_steps[s];
        }
    }
}

// ---- micro-kernels

// Writes (or adds, accumulate) the tile's rows: columns [0, ncols) of vectors acc[i][0 .. nv).
template <int mr, int nv>
inline void store_rows(__m512 (&acc)[mr][nv], float* y, int64_t ldy, int ncols, bool accumulate) {
#pragma GCC unroll 8
    for (int i = 0; i < mr; ++i) {
#pragma GCC unroll 8
        for (int v = 0; v < nv; ++v) {
            const int left = ncols - 16 * v;
            if (left <= 0) break;
            const __mmask16 m = lanes(left);
            float* p = y + i * ldy + 16 * v;
            __m512 s = acc[i][v];
            if (accumulate) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, p));
            _mm512_mask_storeu_ps(p, m, s);
        }
    }
}

template <int mr>
inline void tile_bf16(const uint32_t* xp, const uint32_t* panel, int64_t steps, float* y, int64_t ldy, int ncols,
                      bool accumulate) {
    constexpr int MR = tile_rows<unit::bf16>;
    __m512 acc[mr][NV] = {};
    for (int64_t s = 0; s < steps; ++s, xp += MR, panel += NC) {
        __m512i wv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            wv[v] = _mm512_load_si512(panel + 16 * v);
            __asm__("" : "+v"(wv[v]));  // as in tile_int8
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i) {
            const __m512i b = _mm512_set1_epi32(int(xp[i]));
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], (__m512bh)b, (__m512bh)wv[v]);
        }
    }
    store_rows<mr, NV>(acc, y, ldy, ncols, accumulate);
}

// Per 32-value block: int32 sums over its 8 steps started from the offset correction, then
// converted and added into the f32 accumulators times d_x * d_w.
template <int mr>
inline void tile_int8(const uint32_t* xp, const float* xs, const uint32_t* panel, const float* scales,
                      const int32_t* sums, int64_t blocks, float* y, int64_t ldy, int ncols, bool accumulate) {
    constexpr int MR = tile_rows<unit::int8>;
    __m512 acc[mr][NV] = {};
    for (int64_t b = 0; b < blocks; ++b, xs += MR, scales += NC, sums += NC) {
        __m512i part[mr][NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            __m512i c = _mm512_load_si512(sums + 16 * v);
            __asm__("" : "+v"(c));
#pragma GCC unroll 8
            for (int i = 0; i < mr; ++i) part[i][v] = c;
        }
#pragma GCC unroll 8
        for (int g = 0; g < BLOCK_STEPS; ++g, xp += MR, panel += NC) {
            __m512i wv[NV];
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) {
                wv[v] = _mm512_load_si512(panel + 16 * v);
                // In a register: folded into each vpdpbusd as a memory operand it would be
                // loaded mr times, and the loop bound by loads.
                __asm__("" : "+v"(wv[v]));
            }
#pragma GCC unroll 8
            for (int i = 0; i < mr; ++i) {
                const __m512i xb = _mm512_set1_epi32(int(xp[i]));
#pragma GCC unroll 8
                for (int v = 0; v < NV; ++v) part[i][v] = _mm512_dpbusd_epi32(part[i][v], xb, wv[v]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i) {
            const __m512 dx = _mm512_set1_ps(xs[i]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v)
                acc[i][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(part[i][v]),
                                            _mm512_mul_ps(_mm512_load_ps(scales + 16 * v), dx), acc[i][v]);
        }
    }
    store_rows<mr, NV>(acc, y, ldy, ncols, accumulate);
}

template <unit U, int mr>
inline void run_tile(const uint32_t* xp, const float* xs, const uint32_t* panel, const float* scales,
                     const int32_t* sums, int64_t steps, float* y, int64_t ldy, int ncols, bool accumulate) {
    if constexpr (U == unit::int8) {
        tile_int8<mr>(xp, xs, panel, scales, sums, steps / BLOCK_STEPS, y, ldy, ncols, accumulate);
    } else {
        (void)xs;
        (void)scales;
        (void)sums;
        tile_bf16<mr>(xp, panel, steps, y, ldy, ncols, accumulate);
    }
}

// run_tile for a tile of mr <= mr_max rows.
template <unit U, int mr_max>
inline void run_rows(int mr, const uint32_t* xp, const float* xs, const uint32_t* panel, const float* scales,
                      const int32_t* sums, int64_t steps, float* y, int64_t ldy, int ncols, bool accumulate) {
    if constexpr (mr_max > 1)
        if (mr < mr_max) return run_rows<U, mr_max - 1>(mr, xp, xs, panel, scales, sums, steps, y, ldy, ncols, accumulate);
    run_tile<U, mr_max>(xp, xs, panel, scales, sums, steps, y, ldy, ncols, accumulate);
}

template <unit U>
bool panel_gemm(const void* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                int64_t ldy, int64_t n_begin, int64_t n_end) {
    constexpr int64_t vps = values_per_step<U>;
    constexpr int64_t kc_block = PANEL_STEPS * vps;
    constexpr int MR = tile_rows<U>;
    // Steps (and int8 blocks) of a whole row of x over all K blocks; the x block is as many
    // rows of them as fit X_BLOCK_DWORDS (at least one tile, at most MC rows).
    const int64_t k_blocks = (K + kc_block - 1) / kc_block;
    const int64_t row_steps = (K / kc_block) * PANEL_STEPS + (K % kc_block + vps - 1) / vps;
    const int64_t row_blocks = U == unit::int8 ? row_steps / BLOCK_STEPS : 0;
    int64_t mc_block = min64(min64(MC, M), X_BLOCK_DWORDS / row_steps) / MR * MR;
    if (mc_block < MR) mc_block = MR;
    const int64_t tiles_max = (min64(mc_block, M) + MR - 1) / MR;
    auto* xp = static_cast<uint32_t*>(buffers.x.reserve(std::size_t(tiles_max * MR * row_steps) * 4));
    auto* xs = static_cast<float*>(buffers.x_scales.reserve(std::size_t(tiles_max * MR * row_blocks + 1) * 4));
    auto* panel = static_cast<uint32_t*>(buffers.panel.reserve(std::size_t(NC * PANEL_STEPS) * 4));
    auto* scales = static_cast<float*>(buffers.panel_scales.reserve(std::size_t(NC * PANEL_BLOCKS) * 4));
    auto* sums = static_cast<int32_t*>(buffers.panel_sums.reserve(std::size_t(NC * PANEL_BLOCKS) * 4));
    if (xp == nullptr || xs == nullptr || panel == nullptr || scales == nullptr || sums == nullptr)
        return false;
    const auto* xb = static_cast<const uint8_t*>(x);
    const int64_t x_element = U == unit::bf16 ? 2 : 4;
    for (int64_t m0 = 0; m0 < M; m0 += mc_block) {
        const int64_t mc = min64(mc_block, M - m0);
        const int64_t tiles = (mc + MR - 1) / MR;
        // The x block: K block kb (steps before it: kb * PANEL_STEPS) at xp + tiles * MR *
        // kb * PANEL_STEPS, in pack_x's tile layout.
        for (int64_t kb = 0; kb < k_blocks; ++kb) {
            const int64_t k0 = kb * kc_block, kc = min64(kc_block, K - k0);
            pack_x<U>(xb + m0 * ldx * x_element, ldx, mc, k0, kc, (kc + vps - 1) / vps,
                      xp + tiles * MR * kb * PANEL_STEPS, xs + tiles * MR * kb * PANEL_BLOCKS);
        }
        // Panel by panel, all K blocks of one before the next: each weight row is read front
        // to back, and the panel's y tiles stay in cache across its K blocks.
        for (int64_t n = n_begin; n < n_end; n += NC) {
            const int nr = static_cast<int>(min64(NC, n_end - n));
            for (int64_t kb = 0; kb < k_blocks; ++kb) {
                const int64_t k0 = kb * kc_block, kc = min64(kc_block, K - k0);
                const int64_t steps = (kc + vps - 1) / vps, blocks = steps / BLOCK_STEPS;
                pack_panel<U>(w + n * ldw, ldw, nr, k0, kc, steps, panel, scales, sums);
                // Meanwhile into L2: what pack_panel reads next (this panel's next K block, else
                // the next panel's first).
                panel_prefetch next;
                if (kb + 1 < k_blocks)
                    next.start(w + n * ldw, ldw, nr, row_offset<U>(k0 + kc), row_offset<U>(min64(K, k0 + kc + kc_block)));
                else if (n + NC < n_end)
                    next.start(w + (n + NC) * ldw, ldw, static_cast<int>(min64(NC, n_end - n - NC)), row_offset<U>(0),
                               row_offset<U>(min64(K, kc_block)));
                const int64_t lines = next.count * ((next.end - next.begin) / 64 + 1);
                const int per_tile = static_cast<int>((lines + tiles - 1) / tiles);
                const uint32_t* block_x = xp + tiles * MR * kb * PANEL_STEPS;
                const float* block_s = xs + tiles * MR * kb * PANEL_BLOCKS;
                for (int64_t t = 0; t < tiles; ++t) {
                    next.issue(per_tile);
                    run_rows<U, MR>(static_cast<int>(min64(MR, mc - t * MR)), block_x + t * steps * MR,
                                    block_s + t * blocks * MR, panel, scales, sums, steps,
                                    y + (m0 + t * MR) * ldy + n, ldy, nr, kb > 0);
                }
            }
        }
    }
    return true;
}

}  // namespace

bool gemm_panels_q8_0(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                      int64_t ldy, int64_t n_begin, int64_t n_end) {
    return panel_gemm<unit::int8>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
}

bool gemm_panels_bf16_dot(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw,
                          float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    return panel_gemm<unit::bf16>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
}

#endif  // __AVX512BF16__ && __AVX512VNNI__
}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

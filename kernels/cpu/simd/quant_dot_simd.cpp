// The decode path (M <= quant_integer_max_rows) for q2_k .. q6_k, iq4_xs (rows a multiple of 256
// values), q8_0 and the legacy 32-value types q4_0, q4_1, q5_0, q5_1 and iq4_nl (eight blocks
// at a time, then the row's last K % 256 values one block at a time) on one ISA: each weight
// block is read once and decoded in registers, never staged in memory, and dotted with every
// row of x by int8 dot products.
//
// x is quantized once per call, per row and run of 32 values, exactly as the scalar reference
// does (quant_activations.hpp: d = max|x| / 127, q = round(x / d)), and laid out for the dots:
//
//   q[K]          int8 values in natural order
//   bias[K / 4]   int32 per 4 values: -b * (sum of their q), b the weight type's offset (q6_k:
//                 32); the start value of the lane that sums those 4 products, so that the
//                 integer sums are exactly sum (w - b) * q
//   dx16[K / 16]  the d of the 32-value run holding each group of 16, as f32
//   ds16[K / 16]  d * (sum of the group's q), for the types with mins
//
// A slot is one vector of weight bytes: 64 values (AVX-512) or 32 (AVX2). Its int32 lanes sum
// 4 consecutive products each, so lane i of a slot covers group (slot values / 16) * s + i / 4
// of 16 values. Weight values are unsigned (q4_k 0..15, q5_k 0..31, q6_k 0..63) and x signed,
// which is what the instruction multiplies:
//   * AVX-512 VNNI (avx512_bf16 library): vpdpbusd, 64 products into 16 lanes, started at the
//     bias lanes;
//   * AVX2 and AVX-512 without VNNI: vpmaddubsw (pairs; |pair| <= 2 * 63 * 127, no saturation)
//     then vpmaddwd by ones, and the bias lanes added.
// Per block and x row the 16 group multipliers (d * scale, f32) are multiplied by x's dx16 and
// spread to the slot's lanes with one permute; the lane sums are converted and accumulated
// with one FMA per slot. Mins are subtracted once per block through ds16 (an FMA of 16 lanes).
//
// Versus the reference the integer sums are the same; only the f32 rounding and order differ.
#include <array>

#include "../quant_activations.hpp"
#include "../reference/reference_kernels.hpp"
#include "llmq/kernels/quant_blocks.hpp"
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

constexpr int SUPER = 256;  // values of a k-quant block
// How far ahead of the decoder the weights are prefetched: one row stream per thread needs
// about bandwidth x latency bytes in flight (8..16 KiB measured best here; 1 KiB reached only
// 0.7 of the bandwidth from one core).
constexpr int PREFETCH_AHEAD = 12 << 10;

// ---- vectors of int8 slots and of 16 f32 values

#if defined(__AVX512F__)
constexpr int SLOT = 64;
using vi = __m512i;
inline vi load_slot(const void* p) { return _mm512_loadu_si512(p); }
inline vi zero_i() { return _mm512_setzero_si512(); }
inline vf to_float(vi a) { return _mm512_cvtepi32_ps(a); }
// Lanes sum 4 products of w (u8) and x (s8) each, plus start.
inline vi dot(vi start, vi w, vi x) {
#if defined(__AVX512VNNI__)
    return _mm512_dpbusd_epi32(start, w, x);
#else
    return _mm512_add_epi32(start, _mm512_madd_epi16(_mm512_maddubs_epi16(w, x), _mm512_set1_epi16(1)));
#endif
}

struct g16 {
    __m512 v;
};
inline g16 g16_zero() { return {_mm512_setzero_ps()}; }
inline g16 g16_load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline g16 g16_mul(g16 a, g16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline g16 g16_add(g16 a, g16 b) { return {_mm512_add_ps(a.v, b.v)}; }
inline float g16_sum(g16 a) { return _mm512_reduce_add_ps(a.v); }
inline void g16_store(float* p, g16 a) { _mm512_store_ps(p, a.v); }  // p 64-byte aligned
inline float g16_sum_upper(g16 a) {
    const __m256 h = _mm512_extractf32x8_ps(a.v, 1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
// 16 bytes (u8 or s8) to f32, times `scale` (one f32 per lane).
inline g16 g16_from_u8(__m128i b, __m512 scale) { return {_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)), scale)}; }
inline g16 g16_from_s8(__m128i b, __m512 scale) { return {_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), scale)}; }
#else
constexpr int SLOT = 32;
using vi = __m256i;
inline vi load_slot(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline vi zero_i() { return _mm256_setzero_si256(); }
inline vf to_float(vi a) { return _mm256_cvtepi32_ps(a); }
inline vi dot(vi start, vi w, vi x) {
    return _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
}

struct g16 {
    __m256 lo, hi;
};
inline g16 g16_zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline g16 g16_load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline g16 g16_mul(g16 a, g16 b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
inline g16 g16_add(g16 a, g16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
inline float g16_sum_upper(g16 a) { return vhsum(a.hi); }
inline float g16_sum(g16 a) { return vhsum(_mm256_add_ps(a.lo, a.hi)); }
inline void g16_store(float* p, g16 a) {  // p 32-byte aligned
    _mm256_store_ps(p, a.lo);
    _mm256_store_ps(p + 8, a.hi);
}
inline g16 g16_from_u8(__m128i b, __m256 lo_scale, __m256 hi_scale) {
    return {_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), lo_scale),
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8))), hi_scale)};
}
inline g16 g16_from_s8(__m128i b, __m256 scale) {
    return {_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), scale),
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))), scale)};
}
#endif

#if defined(__AVX512VNNI__)
constexpr bool vnni = true;
#else
constexpr bool vnni = false;
#endif

// Lanes sum 4 products of w and x, both signed (no VNNI: |w| times x with w's sign, so that
// vpmaddubsw's u8 operand is |w| <= 128 and no pair sum saturates).
inline vi dot_signed(vi start, vi w, vi x) {
#if defined(__AVX512F__)
    const __m512i xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
    return dot(start, _mm512_abs_epi8(w), xs);
#else
    return dot(start, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
#endif
}

constexpr int SLOTS = SUPER / SLOT;
constexpr int LANES = SLOT / 4;  // int32 lanes of a slot
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// Where the multiplier of each lane of each slot is, among the 16 f32 values of a block's
// factors (the lane permutes of the kernel).
struct lane_table {
    alignas(64) int32_t index[SLOTS][LANES];
};

// ---- the k-quants: layouts in quant_blocks.hpp
//
// Each type T gives:
//   bytes, bias (the offset its unsigned values carry), has_min;
//   order[8]: the 32-value runs of the block in the order its slots hold them (x is stored
//     in that order);
//   lanes: for lane i of slot s, which of the 16 factor values multiplies it;
//   decode(block, w, F): the slots' unsigned values and the 16 factors F, with
//     x_factors(dx, ds, X): the 16 values of x's side (per block) that F is multiplied by;
//   min16 and mins(block, M): a min per group of 16 (q2_k), M = dmin * min of the 16 groups,
//     multiplied by x's dx * sum(q) of each group (x_layout's S), summed and subtracted.

// The eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a q4_k / q5_k block from its
// 12 packed bytes (the 16 bytes loaded from `packed` may run into the block's qs; unused).
inline __m128i scales_mins_k4(const uint8_t* packed) {
    const __m128i b = load128(packed);
    // Per 32-bit lane: scales 0..3 = bytes 0..3 & 63; scales 4..7 = (bytes 8..11 & 15) | top
    // 2 bits of bytes 0..3 at bits 4..5; mins 0..3 = bytes 4..7 & 63; mins 4..7 = (bytes
    // 8..11 >> 4) | top 2 bits of bytes 4..7 at bits 4..5.
    const __m128i low = _mm_shuffle_epi8(b, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i top = _mm_shuffle_epi8(b, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i low_bits = _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
                                           _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i top_bits = _mm_and_si128(_mm_srli_epi32(top, 2), _mm_set1_epi8(0x30));
    return _mm_or_si128(low_bits, top_bits);
}

// q4_k / q5_k: factors F = [d * scale of run 0..7, dmin * min of run 0..7]; x's side
// X = [dx of run 0..7, dx * sum(q) of run 0..7]. The mins' products (F X, upper half) are
// summed over the row and subtracted at its end.
//
// With VNNI the slots hold the values times a power of two where that saves instructions, and
// x's side carries the inverse (unit, exact): q4_k's high nibbles are used in place (v & 0xf0,
// 16 x the value); q5_k holds 8 x the value, the nibble shifted to bits 3..6 and the fifth bit
// to bit 7.
template <bool five>
struct q45_k {
    static constexpr int bytes = five ? 176 : 144;
    static constexpr int group = 32;  // values per factor of F
    static constexpr int bias = 0;
    static constexpr bool has_min = true, min16 = false;
    static void mins(const uint8_t*, g16&) {}
    static constexpr bool signed_weights = false, tail = false;
    // Only with VNNI: vpmaddubsw's pair sums of such values (up to 2 x 248 x 127) would
    // saturate int16.
    static constexpr bool scaled = vnni;
#if defined(__AVX512F__)
    static constexpr bool eight = five && scaled;  // q5_k slots hold 8 x the value
#else
    static constexpr bool eight = false;
#endif
    // What the stored values of natural run g are multiplied by to give the format's.
    static constexpr float unit(int g) {
        return eight ? 0.125f : (scaled && !five && g % 2 == 1 ? 0.0625f : 1.0f);
    }
#if defined(__AVX512F__)
    // Slot 2p + h (h: 0 low nibbles, 1 high) holds runs 4p + h (bytes 0..31) and 4p + 2 + h
    // (bytes 32..63): one 64-byte load of qs gives two slots.
    static constexpr int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
#else
    static constexpr int order[8] = {0, 1, 2, 3, 4, 5, 6, 7};  // slot s: run s
#endif
    static constexpr lane_table lanes = [] {
        lane_table t{};
        for (int s = 0; s < SLOTS; ++s)
            for (int i = 0; i < LANES; ++i) t.index[s][i] = order[(s * SLOT + 4 * i) / 32];
        return t;
    }();

    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
        factors(b, F);
        values(b, w);
    }
    static void factors(const uint8_t* b, g16& F) {
        int32_t halves;
        std::memcpy(&halves, b, 4);
        const __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128(halves));
        const __m128i packed = scales_mins_k4(b + 4);
#if defined(__AVX512F__)
        const __m512 scale = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                                   _mm512_castps128_ps512(d_dmin));
        F = g16_from_u8(packed, scale);
#else
        const __m256 d = _mm256_broadcastss_ps(d_dmin);
        const __m256 dmin = _mm256_permute_ps(_mm256_castps128_ps256(d_dmin), 0x55);
        F = g16_from_u8(packed, d, _mm256_permute2f128_ps(dmin, dmin, 0));
#endif
    }
#if defined(__AVX512F__)
    // The factors of the 4 blocks at b, b + bytes, ...: the same values as factors() of each,
    // with the scale and min unpacking done once for all four (one block per 128-bit lane).
    static constexpr bool group4 = true;
    static void factors4(const uint8_t* b, g16 (&F)[4]) {
        // lane j: block j's bytes 0..15 = d, dmin (fp16), then the 12 packed scale bytes
        __m512i raw = _mm512_castsi128_si512(load128(b));
        raw = _mm512_inserti32x4(raw, load128(b + bytes), 1);
        raw = _mm512_inserti32x4(raw, load128(b + 2 * bytes), 2);
        raw = _mm512_inserti32x4(raw, load128(b + 3 * bytes), 3);
        // scales_mins_k4 on each lane, its bytes 4 further on
        const __m512i low = _mm512_shuffle_epi8(
            raw, _mm512_broadcast_i32x4(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15)));
        const __m512i top = _mm512_shuffle_epi8(
            raw, _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11)));
        const __m512i low_bits = _mm512_and_si512(_mm512_srlv_epi32(low, _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4))),
                                                  _mm512_broadcast_i32x4(_mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)));
        const __m512i packed = _mm512_ternarylogic_epi32(low_bits, _mm512_srli_epi32(top, 2), _mm512_set1_epi8(0x30), 0xf8);
        // d0 dmin0 d1 dmin1 ... (dword 0 of each lane)
        const __m256 dd = _mm256_cvtph_ps(_mm512_castsi512_si128(
            _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), raw)));
        const __m512 dd16 = _mm512_castps256_ps512(dd);
        F[0] = g16_from_u8(_mm512_castsi512_si128(packed),
                           _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), dd16));
        F[1] = g16_from_u8(_mm512_extracti32x4_epi32(packed, 1),
                           _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), dd16));
        F[2] = g16_from_u8(_mm512_extracti32x4_epi32(packed, 2),
                           _mm512_permutexvar_ps(_mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5), dd16));
        F[3] = g16_from_u8(_mm512_extracti32x4_epi32(packed, 3),
                           _mm512_permutexvar_ps(_mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7), dd16));
    }
#else
    static constexpr bool group4 = false;
    static void factors4(const uint8_t*, g16 (&)[4]) {}
#endif
    static void values(const uint8_t* b, vi (&w)[SLOTS]) {
        const uint8_t* qs = five ? b + 48 : b + 16;
#if defined(__AVX512F__)
        const __m512i nibble = _mm512_set1_epi8(15);
        [[maybe_unused]] const __m512i qh = five ? _mm512_broadcast_i64x4(load256(b + 16)) : _mm512_setzero_si512();
        for (int p = 0; p < 2; ++p) {
            const __m512i v = _mm512_loadu_si512(qs + 64 * p);
            const int g = 4 * p;  // runs g, g + 2 (low nibbles), g + 1, g + 3 (high)
            if constexpr (!scaled) {
                __m512i lo = _mm512_and_si512(v, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
                if constexpr (five) {  // bit g of qh[l] is the 5th bit of value 32g + l: moved to bit 4
                    const __m512i sixteen = _mm512_set1_epi8(16);
                    const __m512i to_lo = _mm512_setr_epi64(g, g, g, g, g + 2, g + 2, g + 2, g + 2);
                    const __m512i to_hi = _mm512_add_epi64(to_lo, _mm512_set1_epi64(1));
                    // bit g to bit 4: shift left by 4 - g or right by g - 4 (per 64-bit lane)
                    const __m512i four = _mm512_set1_epi64(4);
                    const __m512i bits_lo = _mm512_or_si512(_mm512_sllv_epi64(qh, _mm512_sub_epi64(four, to_lo)),
                                                            _mm512_srlv_epi64(qh, _mm512_sub_epi64(to_lo, four)));
                    const __m512i bits_hi = _mm512_or_si512(_mm512_sllv_epi64(qh, _mm512_sub_epi64(four, to_hi)),
                                                            _mm512_srlv_epi64(qh, _mm512_sub_epi64(to_hi, four)));
                    lo = _mm512_ternarylogic_epi32(lo, bits_lo, sixteen, 0xf8);  // lo | (bits & 16)
                    hi = _mm512_ternarylogic_epi32(hi, bits_hi, sixteen, 0xf8);
                }
                w[2 * p] = lo;
                w[2 * p + 1] = hi;
            } else if constexpr (five) {
                // 8 x the value: the nibble at bits 3..6 (<< 3 or >> 1), and bit g of qh[l], the
                // 5th bit of value 32g + l, shifted left by 7 - g to bit 7 (per 64-bit lane)
                const __m512i to_lo = _mm512_setr_epi64(7 - g, 7 - g, 7 - g, 7 - g, 5 - g, 5 - g, 5 - g, 5 - g);
                const __m512i to_hi = _mm512_sub_epi64(to_lo, _mm512_set1_epi64(1));
                const __m512i bits3to6 = _mm512_set1_epi8(0x78), bit7 = _mm512_set1_epi8(char(0x80));
                const __m512i fifth_lo = _mm512_and_si512(_mm512_sllv_epi64(qh, to_lo), bit7);
                const __m512i fifth_hi = _mm512_and_si512(_mm512_sllv_epi64(qh, to_hi), bit7);
                // (nibble & 0x78) | fifth
                w[2 * p] = _mm512_ternarylogic_epi32(_mm512_slli_epi16(v, 3), fifth_lo, bits3to6, 0xec);
                w[2 * p + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 1), fifth_hi, bits3to6, 0xec);
            } else {
                w[2 * p] = _mm512_and_si512(v, nibble);
                w[2 * p + 1] = _mm512_andnot_si512(nibble, v);  // 16 x the high nibble
            }
        }
#else
        const __m256i nibble = _mm256_set1_epi8(15);
        [[maybe_unused]] const __m256i qh = five ? load256(b + 16) : _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
            const __m256i v = load256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(v, nibble);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
            if constexpr (five) {
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
            }
            w[2 * c] = lo;
            w[2 * c + 1] = hi;
        }
#endif
    }
    // dx, ds: per natural 32-value run of the block.
    static void x_factors(const float* dx, const float* ds, float* X) {
        for (int g = 0; g < 8; ++g) {
            X[g] = dx[g] * unit(g);
            X[8 + g] = ds[g];
        }
    }
};

// What the types with one decoder per block and their runs in natural order share: the lane
// table of factors one per `values` values, unscaled values, no four-block factors.
constexpr lane_table lanes_per(int values) {
    lane_table t{};
    for (int s = 0; s < SLOTS; ++s)
        for (int i = 0; i < LANES; ++i) t.index[s][i] = (s * SLOT + 4 * i) / values;
    return t;
}
struct plain_type {
    static constexpr float unit(int) { return 1.0f; }
    static constexpr bool group4 = false;
    static constexpr bool min16 = false;
    static void mins(const uint8_t*, g16&) {}
    static void factors4(const uint8_t*, g16 (&)[4]) {}
    static void values(const uint8_t*, vi (&)[SLOTS]) {}
    static constexpr int order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
};

// q6_k: F = d * the 16 int8 scales (one per group of 16), X = dx of each group's run.
struct q6_k : plain_type {
    static constexpr int bytes = 210;
    static constexpr int group = 16;
    static constexpr int bias = 32;
    static constexpr bool has_min = false;
    static constexpr bool signed_weights = false, tail = false;
    static constexpr lane_table lanes = lanes_per(16);

    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
        const float d = half_to_float(b + 208);
        // Value 128h + 32r + l: low 4 bits from ql[64h + l + 32 (r & 1)] (low nibble for
        // r < 2), high 2 bits from bits 2r of qh[32h + l], to be placed at bits 4..5.
#if defined(__AVX512F__)
        F = g16_from_s8(load128(b + 192), _mm512_set1_ps(d));
        const __m512i nibble = _mm512_set1_epi8(15), bits45 = _mm512_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = _mm512_loadu_si512(b + 64 * h);
            const __m512i qh = _mm512_broadcast_i64x4(load256(b + 128 + 32 * h));
            // slot 2h: r = 0, 1 (bits 0..1 and 2..3 to 4..5); slot 2h + 1: r = 2, 3
            const __m512i high01 = _mm512_sllv_epi64(qh, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
            const __m512i high23 = _mm512_srlv_epi64(qh, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
            // (nibble source & 15) | (high & 0x30)
            w[2 * h] = _mm512_ternarylogic_epi32(ql, _mm512_and_si512(high01, bits45), nibble, 0xec);
            w[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), _mm512_and_si512(high23, bits45), nibble, 0xec);
        }
#else
        F = g16_from_s8(load128(b + 192), _mm256_set1_ps(d));
        const __m256i nibble = _mm256_set1_epi8(15), three = _mm256_set1_epi8(3);
        for (int h = 0; h < 2; ++h) {
            const __m256i l0 = load256(b + 64 * h), l1 = load256(b + 64 * h + 32);
            const __m256i qh = load256(b + 128 + 32 * h);
            const __m256i low[4] = {_mm256_and_si256(l0, nibble), _mm256_and_si256(l1, nibble),
                                    _mm256_and_si256(_mm256_srli_epi16(l0, 4), nibble),
                                    _mm256_and_si256(_mm256_srli_epi16(l1, 4), nibble)};
            for (int r = 0; r < 4; ++r) {
                const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), three);
                w[4 * h + r] = _mm256_or_si256(low[r], _mm256_slli_epi16(high, 4));
            }
        }
#endif
    }
    static void x_factors(const float* dx, const float*, float* X) {
        for (int g = 0; g < 16; ++g) X[g] = dx[g / 2];
    }
};

// q2_k: values 0..3, v = d * (scale & 15) * q - dmin * (scale >> 4), one scale byte per group
// of 16 (bytes 0..15; qs at 16, d at 80, dmin at 82): F = d * the 16 low nibbles, X = dx of
// each group's run, and the mins through mins() (min16).
struct q2_k : plain_type {
    static constexpr int bytes = 84;
    static constexpr int group = 16;
    static constexpr int bias = 0;
    static constexpr bool has_min = false, min16 = true;
    static constexpr bool signed_weights = false, tail = false;
    static constexpr lane_table lanes = lanes_per(16);

    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
        const float d = half_to_float(b + 80);
        const __m128i sc = _mm_and_si128(load128(b), _mm_set1_epi8(15));
        // Value 128n + 32j + l: bits 2j of qs[32n + l].
#if defined(__AVX512F__)
        F = g16_from_u8(sc, _mm512_set1_ps(d));
        const __m512i three = _mm512_set1_epi8(3);
        for (int p = 0; p < 4; ++p) {  // slot p: n = p / 2, j = 2 (p % 2) and j + 1
            const int n = p / 2, shift = 4 * (p % 2);
            const __m512i qs = _mm512_broadcast_i64x4(load256(b + 16 + 32 * n));
            w[p] = _mm512_and_si512(
                _mm512_srlv_epi64(qs, _mm512_setr_epi64(shift, shift, shift, shift, shift + 2, shift + 2, shift + 2, shift + 2)),
                three);
        }
#else
        F = g16_from_u8(sc, _mm256_set1_ps(d), _mm256_set1_ps(d));
        const __m256i three = _mm256_set1_epi8(3);
        for (int j = 0; j < 8; ++j)  // slot j: n = j / 4, shift 2 (j % 4)
            w[j] = _mm256_and_si256(_mm256_srli_epi16(load256(b + 16 + 32 * (j / 4)), 2 * (j % 4)), three);
#endif
    }
    static void mins(const uint8_t* b, g16& M) {
        const float dmin = half_to_float(b + 82);
        const __m128i m = _mm_and_si128(_mm_srli_epi16(load128(b), 4), _mm_set1_epi8(15));
#if defined(__AVX512F__)
        M = g16_from_u8(m, _mm512_set1_ps(dmin));
#else
        M = g16_from_u8(m, _mm256_set1_ps(dmin), _mm256_set1_ps(dmin));
#endif
    }
    static void x_factors(const float* dx, const float*, float* X) {
        for (int g = 0; g < 16; ++g) X[g] = dx[g / 2];
    }
};

// q3_k: unsigned values q2 + 4 * (high bit) in 0..7 with bias 4 (the format subtracts 4 where
// the high bit is clear); F = d * (s - 32) of the 16 groups, X = dx of each group's run.
struct q3_k : plain_type {
    static constexpr int bytes = 110;
    static constexpr int group = 16;
    static constexpr int bias = 4;
    static constexpr bool has_min = false;
    static constexpr bool signed_weights = false, tail = false;
    static constexpr lane_table lanes = lanes_per(16);

    // The 16 6-bit scales (less 32, as int8) from the 12 packed bytes at p.
    static __m128i scales(const uint8_t* p) {
        uint64_t low8;
        uint32_t high4;
        std::memcpy(&low8, p, 8);
        std::memcpy(&high4, p + 8, 4);
        const __m128i b = _mm_cvtsi64_si128(int64_t(low8));
        // low 4 bits: group g < 8 the low nibble of byte g, g >= 8 the high nibble of byte g - 8
        const __m128i nibble = _mm_set1_epi8(15);
        const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(b, nibble), _mm_and_si128(_mm_srli_epi16(b, 4), nibble));
        // high 2 bits of group 4q + r: bits 2q of byte 8 + r (dword q of four copies, byte r)
        const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(int32_t(high4)), _mm_setr_epi32(0, 2, 4, 6)),
                                           _mm_set1_epi8(3));
        return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
    }
    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
        const float d = half_to_float(b + 108);
        // Value 128h + 32s + j: bits 2s of qs[32h + j] (qs at b + 32), high bit = bit 4h + s of
        // hmask[j] (hmask at b), placed at bit 2.
#if defined(__AVX512F__)
        F = g16_from_s8(scales(b + 96), _mm512_set1_ps(d));
        const __m512i hm = _mm512_broadcast_i64x4(load256(b));
        const __m512i three = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
        for (int p = 0; p < 4; ++p) {  // slot p: h = p / 2, s = 2 (p % 2) and s + 1
            const int h = p / 2, s0 = 2 * (p % 2);
            const __m512i qs = _mm512_broadcast_i64x4(load256(b + 32 + 32 * h));
            const __m512i q2 = _mm512_and_si512(_mm512_srlv_epi64(qs, _mm512_setr_epi64(2 * s0, 2 * s0, 2 * s0, 2 * s0, 2 * s0 + 2, 2 * s0 + 2, 2 * s0 + 2, 2 * s0 + 2)), three);
            const int bit = 4 * h + s0;  // to bit 2: right by bit - 2 (bit 0, 1: left)
            const __m512i amount = _mm512_setr_epi64(bit, bit, bit, bit, bit + 1, bit + 1, bit + 1, bit + 1);
            const __m512i two = _mm512_set1_epi64(2);
            const __m512i high = _mm512_or_si512(_mm512_srlv_epi64(hm, _mm512_sub_epi64(amount, two)),
                                                 _mm512_sllv_epi64(hm, _mm512_sub_epi64(two, amount)));
            w[p] = _mm512_ternarylogic_epi32(q2, high, four, 0xf8);  // q2 | (high & 4)
        }
#else
        F = g16_from_s8(scales(b + 96), _mm256_set1_ps(d));
        const __m256i hm = load256(b);
        const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
        for (int j = 0; j < 8; ++j) {  // slot j: h = j / 4, s = j % 4
            const int h = j / 4, sh = j % 4;
            const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(load256(b + 32 + 32 * h), 2 * sh), three);
            const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + sh), one);
            w[j] = _mm256_or_si256(q2, _mm256_slli_epi16(high, 2));
        }
#endif
    }
    static void x_factors(const float* dx, const float*, float* X) {
        for (int g = 0; g < 16; ++g) X[g] = dx[g / 2];
    }
};

// iq4_xs: the codebook value of each nibble, + 128 as u8 under VNNI (bias 128), signed with
// the sign trick otherwise; F = d * (ls - 32) of the 8 runs, each twice (groups of 16).
struct iq4_xs : plain_type {
    static constexpr int bytes = 136;
    static constexpr int group = 16;
    static constexpr int bias = vnni ? 128 : 0;
    static constexpr bool has_min = false;
    static constexpr bool signed_weights = !vnni, tail = false;
    static constexpr lane_table lanes = lanes_per(16);

    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
        const float d = half_to_float(b);
        const int scales_h = b[2] | b[3] << 8;
        alignas(16) int8_t ls[16];
        for (int g = 0; g < 8; ++g)
            ls[2 * g] = ls[2 * g + 1] = int8_t((((b[4 + g / 2] >> (4 * (g % 2))) & 15) | ((scales_h >> (2 * g)) & 3) << 4) - 32);
        const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iq4_codebook));
        const __m128i codebook = vnni ? _mm_xor_si128(table, _mm_set1_epi8(char(0x80))) : table;
        // Run g: nibbles of qs[16g .. 16g + 15] (qs at b + 8), low ones first.
#if defined(__AVX512F__)
        F = g16_from_s8(_mm_load_si128(reinterpret_cast<const __m128i*>(ls)), _mm512_set1_ps(d));
        const __m512i lookup = _mm512_broadcast_i32x4(codebook);
        for (int p = 0; p < 4; ++p) {  // slot p: runs 2p, 2p + 1 = qs[32p .. 32p + 31]
            const __m512i v = _mm512_broadcast_i64x4(load256(b + 8 + 32 * p));  // A B A B (16-byte lanes)
            const __m512i aabb = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(1, 1, 0, 0));
            const __m512i nibbles = _mm512_and_si512(_mm512_srlv_epi64(aabb, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                                                     _mm512_set1_epi8(15));
            w[p] = _mm512_shuffle_epi8(lookup, nibbles);
        }
#else
        F = g16_from_s8(_mm_load_si128(reinterpret_cast<const __m128i*>(ls)), _mm256_set1_ps(d));
        const __m256i lookup = _mm256_broadcastsi128_si256(codebook);
        for (int g = 0; g < 8; ++g) {
            const __m256i v = _mm256_broadcastsi128_si256(load128(b + 8 + 16 * g));
            const __m256i nibbles = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(15));
            w[g] = _mm256_shuffle_epi8(lookup, nibbles);
        }
#endif
    }
    static void x_factors(const float* dx, const float*, float* X) {
        for (int g = 0; g < 16; ++g) X[g] = dx[g / 2];
    }
};

// The legacy 32-value types (quant_blocks.hpp), eight blocks at a time (256 values), the last
// K % 256 values as a tail of single blocks (tail_values): v = d * (q - offset) (q4_0: 8,
// q5_0: 16), d * q + m (q4_1, q5_1) or d * codebook[q] (iq4_nl; + 128 as u8 under VNNI, as
// iq4_xs). F = [d of block 0..7, -m of block 0..7 (or 0)], X = [dx of run 0..7, ds of run
// 0..7 (or 0)]: the min's products are summed and subtracted, as for q4_k.
enum class legacy_kind { q4_0, q4_1, q5_0, q5_1, iq4_nl };
template <legacy_kind kind>
struct legacy : plain_type {
    static constexpr bool five = kind == legacy_kind::q5_0 || kind == legacy_kind::q5_1;
    static constexpr bool nl = kind == legacy_kind::iq4_nl;
    static constexpr int block = kind == legacy_kind::q4_1 ? 20 : kind == legacy_kind::q5_0 ? 22 : kind == legacy_kind::q5_1 ? 24 : 18;
    static constexpr bool has_min = kind == legacy_kind::q4_1 || kind == legacy_kind::q5_1;
    static constexpr int qh_at = has_min ? 4 : 2;               // q5_0 / q5_1: 32 bits of fifth bits
    static constexpr int qs_at = (has_min ? 4 : 2) + (five ? 4 : 0);
    static constexpr int bytes = 8 * block;
    static constexpr int group = 32;
    static constexpr int bias = nl ? (vnni ? 128 : 0) : kind == legacy_kind::q4_0 ? 8 : kind == legacy_kind::q5_0 ? 16 : 0;
    static constexpr bool signed_weights = nl && !vnni, tail = true;
    static constexpr int tail_block = block;
    static constexpr lane_table lanes = lanes_per(32);

    // The 32 unsigned values of the block at b (signed for signed_weights) as a 256-bit
    // vector in value order: 128-bit lane 0 the low nibbles, lane 1 the high ones.
    [[maybe_unused]] static __m256i block_values(const uint8_t* b) {
        const __m256i v = _mm256_broadcastsi128_si256(load128(b + qs_at));
        __m256i q = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(15));
        if constexpr (five) {  // bit j of qh is the 5th bit of value j
            uint32_t qh;
            std::memcpy(&qh, b + qh_at, 4);
#if defined(__AVX512F__)
            const __m256i high = _mm256_movm_epi8(__mmask32(qh));
#else
            // byte j of the vector: byte j / 8 of qh, tested against bit j % 8
            const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(qh)),
                                                       _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
            const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
            const __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
#endif
            q = _mm256_or_si256(q, _mm256_and_si256(high, _mm256_set1_epi8(16)));
        }
        if constexpr (nl) {
            const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(iq4_codebook)));
            q = _mm256_shuffle_epi8(vnni ? _mm256_xor_si256(table, _mm256_set1_epi8(char(0x80))) : table, q);
        }
        return q;
    }
    // A tail block: its values as decode gives them, its d and its m (0 without a min).
    static __m256i tail_values(const uint8_t* b) { return block_values(b); }
    static float tail_min(const uint8_t* b) { return has_min ? half_to_float(b + 2) : 0.0f; }
#if defined(__AVX512F__)
    // Blocks a and b (their 64 values in order) as one slot.
    static __m512i pair_values(const uint8_t* a, const uint8_t* b) {
        const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(a + qs_at)), load128(b + qs_at), 1);
        const __m512i v = _mm512_shuffle_i64x2(_mm512_castsi256_si512(both), _mm512_castsi256_si512(both), _MM_SHUFFLE(1, 1, 0, 0));
        __m512i q = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(15));
        if constexpr (five) {  // bit j of qh is the 5th bit of value j
            uint32_t qa, qb;
            std::memcpy(&qa, a + qh_at, 4);
            std::memcpy(&qb, b + qh_at, 4);
            const __m512i high = _mm512_movm_epi8(__mmask64(qa | uint64_t(qb) << 32));
            q = _mm512_ternarylogic_epi32(q, high, _mm512_set1_epi8(16), 0xf8);  // q | (high & 16)
        }
        if constexpr (nl) {
            const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iq4_codebook));
            q = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(vnni ? _mm_xor_si128(table, _mm_set1_epi8(char(0x80))) : table), q);
        }
        return q;
    }
#endif
    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
#if defined(__AVX512F__)
        // d (and m) of block i: word (block / 2) i (+ 1) of the blocks' bytes (even strides);
        // blocks 0..3 and 4..7 from two 128-byte windows, each picked by one word permute
        constexpr int stride = block / 2;
        alignas(64) static constexpr int16_t at[32] = {
            0, stride, 2 * stride, 3 * stride, 0, stride, 2 * stride, 3 * stride,
            1, stride + 1, 2 * stride + 1, 3 * stride + 1, 1, stride + 1, 2 * stride + 1, 3 * stride + 1};
        const __m512i index = _mm512_load_si512(at);
        const uint8_t* upper = b + 4 * block;
        // Each window is read only as far as the permute's last word (3 * stride + 1), by
        // masked loads: a 128-byte window of the last blocks would run past the row (past
        // the end of the weights, or of their mapping, for the last row).
        constexpr int need = 3 * block + 4;
        constexpr __mmask64 low = need >= 64 ? ~__mmask64(0) : (__mmask64(1) << need) - 1;
        constexpr __mmask64 high = need <= 64 ? 0 : (__mmask64(1) << (need - 64)) - 1;
        const auto window = [](const uint8_t* p, __m512i& a, __m512i& c) {
            a = _mm512_maskz_loadu_epi8(low, p);
            c = high ? _mm512_maskz_loadu_epi8(high, p + 64) : _mm512_setzero_si512();
        };
        __m512i b0, b1, u0, u1;
        window(b, b0, b1);
        window(upper, u0, u1);
        const __m512i halves = _mm512_or_si512(_mm512_maskz_permutex2var_epi16(0x0f0f, b0, index, b1),
                                               _mm512_maskz_permutex2var_epi16(0xf0f0, u0, index, u1));
        const __m512 dm = _mm512_cvtph_ps(_mm512_castsi512_si256(halves));  // d 0..7, m 0..7
        F = {has_min ? _mm512_mask_sub_ps(dm, 0xff00, _mm512_setzero_ps(), dm) : _mm512_maskz_mov_ps(0x00ff, dm)};
        for (int s = 0; s < SLOTS; ++s) w[s] = pair_values(b + 2 * block * s, b + 2 * block * s + block);
#else
        alignas(16) uint16_t halves[16] = {};
        for (int i = 0; i < 8; ++i) {
            std::memcpy(&halves[i], b + block * i, 2);
            if constexpr (has_min) std::memcpy(&halves[8 + i], b + block * i + 2, 2);
        }
        const __m256 d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(halves)));
        const __m256 m = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(halves + 8))));
        F = {d, m};
        for (int s = 0; s < SLOTS; ++s) w[s] = block_values(b + block * s);
#endif
    }
    static void x_factors(const float* dx, const float* ds, float* X) {
        for (int g = 0; g < 8; ++g) {
            X[g] = dx[g];
            X[8 + g] = has_min ? ds[g] : 0.0f;
        }
    }
};

// q8_0, eight 34-byte blocks at a time: F = [d of block 0..7, 0 ...], X = [dx of run 0..7,
// 0 ...]. With VNNI the signed values are offset to unsigned (w ^ 0x80 = w + 128) and x's
// bias lanes take 128 sum(q) back; without, signed_weights picks the sign trick.
struct q8_0 : plain_type {
    static constexpr int bytes = 8 * q8_0_block_bytes;
    static constexpr int bias = vnni ? 128 : 0;
    static constexpr bool has_min = false;
    static constexpr bool signed_weights = !vnni, tail = true;
    static constexpr int tail_block = q8_0_block_bytes;
    static constexpr lane_table lanes = lanes_per(32);

    static __m256i values(const uint8_t* block) {
        const __m256i v = load256(block + 2);
        return vnni ? _mm256_xor_si256(v, _mm256_set1_epi8(char(0x80))) : v;
    }
    static __m256i tail_values(const uint8_t* block) { return values(block); }
    static float tail_min(const uint8_t*) { return 0.0f; }
    static void decode(const uint8_t* b, vi (&w)[SLOTS], g16& F) {
        alignas(16) uint16_t halves[8];
        for (int i = 0; i < 8; ++i) std::memcpy(&halves[i], b + q8_0_block_bytes * i, 2);
        const __m256 d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(halves)));
#if defined(__AVX512F__)
        F = {_mm512_castps256_ps512(d)};  // upper lanes unused
        for (int s = 0; s < SLOTS; ++s)
            w[s] = _mm512_inserti64x4(_mm512_castsi256_si512(values(b + 68 * s)), values(b + 68 * s + 34), 1);
#else
        F = {d, _mm256_setzero_ps()};
        for (int s = 0; s < SLOTS; ++s) w[s] = values(b + 34 * s);
#endif
    }
    static void x_factors(const float* dx, const float*, float* X) {
        for (int g = 0; g < 8; ++g) X[g] = dx[g];
        for (int g = 8; g < 16; ++g) X[g] = 0.0f;
    }
};

// ---- x, quantized and laid out for the dots (see the top)

struct x_layout {
    int64_t K = 0;
    int8_t* q = nullptr;       // rows x K, runs in the type's order
    int32_t* bias = nullptr;   // rows x K / 4
    float* X = nullptr;        // rows x K / 16: 16 per block
    float* S = nullptr;        // rows x K / 16: dx * (sum of the group's q) per group of 16 (min16)
    detail::scratch_buffer storage;

    bool resize(int64_t rows, int64_t k) {
        K = k;
        const std::size_t q_bytes = std::size_t(rows * k), word_bytes = std::size_t(rows * (k / 4 + 2 * (k / 16))) * 4;
        auto* base = static_cast<uint8_t*>(storage.reserve(word_bytes + q_bytes));
        if (base == nullptr) return false;
        bias = reinterpret_cast<int32_t*>(base);
        X = reinterpret_cast<float*>(bias + rows * (k / 4));
        S = X + rows * (k / 16);
        q = reinterpret_cast<int8_t*>(base + word_bytes);
        return true;
    }
};
thread_local x_layout x_rows;

// One run of 32 values of x: q (at `q`), the lanes -bias * (sum of each 4 q) (at bias4, 8 of
// them), and returns d (sum of q in *sum).
inline float quantize_run(const float* xb, int bias, int8_t* q, int32_t* bias4, int32_t* sum) {
    vf amax = vzero();
    for (int i = 0; i < 32; i += W) amax = vmax(amax, vabs(vload(xb + i)));
    const float d = vhmax(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; i += W) vstore_q8(q + i, vmul(vload(xb + i), vset1(id)));
    const __m256i quads = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), load256(reinterpret_cast<const uint8_t*>(q))),
                                            _mm256_set1_epi16(1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(bias4), _mm256_mullo_epi32(quads, _mm256_set1_epi32(-bias)));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(quads), _mm256_extracti128_si256(quads, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    *sum = _mm_cvtsi128_si32(t);
    return d;
}

// Full blocks of 256 in the type's order; a tail (K % 256: q8_0 and the legacy types) in
// natural order, with the d of its run j at X[16 * (K / 256) + j] and, for the types with a
// min, d * (sum of the run's q) at X[16 * (K / 256) + (K % 256) / 32 + j].
template <class T>
void prepare_row(const float* x, int64_t K, int8_t* q, int32_t* bias4, float* X, float* S) {
    const int64_t full = K / SUPER * SUPER;
    constexpr auto slot_of = [] {  // where natural run g is stored
        std::array<int, 8> at{};
        for (int p = 0; p < 8; ++p) at[T::order[p]] = p;
        return at;
    }();
    for (int64_t b0 = 0; b0 < full; b0 += SUPER) {
        float dx[8], ds[8];
        for (int g = 0; g < 8; ++g) {
            int32_t sum;
            const int p = slot_of[g];
            dx[g] = quantize_run(x + b0 + 32 * g, T::bias, q + b0 + 32 * p, bias4 + (b0 + 32 * p) / 4, &sum);
            ds[g] = dx[g] * float(sum);
            if constexpr (T::min16) {  // S by natural group; q of run g is stored at run p
                for (int h = 0; h < 2; ++h) {
                    int32_t half = 0;
                    for (int i = 0; i < 16; ++i) half += q[b0 + 32 * p + 16 * h + i];
                    S[(b0 + 32 * g) / 16 + h] = dx[g] * float(half);
                }
            }
        }
        T::x_factors(dx, ds, X + b0 / 16);
    }
    const int64_t runs = (K - full) / 32;
    for (int64_t k = full, j = 0; k < K; k += 32, ++j) {
        int32_t sum;
        const float d = quantize_run(x + k, T::bias, q + k, bias4 + k / 4, &sum);
        X[full / 16 + j] = d;
        if constexpr (T::has_min) X[full / 16 + runs + j] = d * float(sum);
    }
}

#if defined(__AVX512F__)
inline vf vload_u8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
#else
inline vf vload_u8(const uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
#endif

#if defined(__AVX512F__)
inline vf lanes_of(const g16& f, const int32_t* index) { return _mm512_permutexvar_ps(_mm512_load_si512(index), f.v); }
#else
inline vf lanes_of(const g16& f, const int32_t* index) {
    // A slot's lanes all index one half of the 16 (index[0] < 8: the low one).
    const __m256i i = _mm256_load_si256(reinterpret_cast<const __m256i*>(index));
    return _mm256_permutevar8x32_ps(index[0] < 8 ? f.lo : f.hi, i);
}
#endif

// ---- the kernel: `rows` rows of x (<= 4) against weight rows [n_begin, n_end)

template <class T, int rows>
void dot_rows(const x_layout& x, int64_t m0, const uint8_t* w, int64_t ldw, float* y, int64_t ldy, int64_t n_begin,
              int64_t n_end) {
    const int64_t K = x.K, blocks = K / SUPER;
    const int8_t* xq[rows];
    const int32_t* xb[rows];
    const float* xf[rows];
    [[maybe_unused]] const float* xs[rows];
    for (int r = 0; r < rows; ++r) {
        xq[r] = x.q + (m0 + r) * K;
        xb[r] = x.bias + (m0 + r) * (K / 4);
        xf[r] = x.X + (m0 + r) * (K / 16);
        xs[r] = x.S + (m0 + r) * (K / 16);
    }
    for (int64_t n = n_begin; n < n_end; ++n) {
        const uint8_t* row = w + n * ldw;
        // NACC accumulators per row (slot s into s % NACC), so consecutive FMAs do not wait on
        // each other: four for one row, two when the rows give independent chains already.
        constexpr int NACC = rows == 1 && SLOTS >= 4 ? 4 : 2;
        vf acc[rows][NACC];
        g16 acc_min[rows];
        [[maybe_unused]] g16 acc_min16[rows];
        [[maybe_unused]] __m256 tail[rows];
        [[maybe_unused]] float tail_min[rows];
        for (int r = 0; r < rows; ++r) {
            for (int a = 0; a < NACC; ++a) acc[r][a] = vzero();
            acc_min[r] = g16_zero();
            if constexpr (T::min16) acc_min16[r] = g16_zero();
            if constexpr (T::tail) tail[r] = _mm256_setzero_ps(), tail_min[r] = 0.0f;
        }
        // Block b's values and factors F into every row's accumulators.
        auto dot_block = [&](int64_t b, const vi (&wq)[SLOTS], const g16& F) {
#pragma GCC unroll 4
            for (int r = 0; r < rows; ++r) {
                const g16 f = g16_mul(F, g16_load(xf[r] + 16 * b));
#pragma GCC unroll 8
                for (int s = 0; s < SLOTS; ++s) {
                    const int64_t k = b * SUPER + s * SLOT;
                    const vi start = T::bias != 0 ? load_slot(xb[r] + k / 4) : zero_i();
                    const vi xv = load_slot(xq[r] + k);
                    vi sums;
                    if constexpr (T::signed_weights) sums = dot_signed(start, wq[s], xv);
                    else sums = dot(start, wq[s], xv);
                    acc[r][s % NACC] = vfma(to_float(sums), lanes_of(f, T::lanes.index[s]), acc[r][s % NACC]);
                }
                if constexpr (T::has_min) acc_min[r] = g16_add(acc_min[r], f);
            }
        };
        int64_t b = 0;
        if constexpr (T::group4) {
            for (; b + 4 <= blocks; b += 4) {
                const uint8_t* block = row + b * T::bytes;
                for (int line = 0; line < 4 * T::bytes; line += 64)
                    _mm_prefetch(reinterpret_cast<const char*>(block + PREFETCH_AHEAD + line), _MM_HINT_T0);
                g16 F[4];
                T::factors4(block, F);
#pragma GCC unroll 4
                for (int j = 0; j < 4; ++j) {
                    vi wq[SLOTS];
                    T::values(block + j * T::bytes, wq);
                    dot_block(b + j, wq, F[j]);
                }
            }
        }
        for (; b < blocks; ++b) {
            const uint8_t* block = row + b * T::bytes;
            for (int line = 0; line < T::bytes; line += 64)
                _mm_prefetch(reinterpret_cast<const char*>(block + PREFETCH_AHEAD + line), _MM_HINT_T0);
            vi wq[SLOTS];
            g16 F;
            T::decode(block, wq, F);
            if constexpr (T::min16) {
                g16 M;
                T::mins(block, M);
                for (int r = 0; r < rows; ++r) acc_min16[r] = g16_add(acc_min16[r], g16_mul(M, g16_load(xs[r] + 16 * b)));
            }
            dot_block(b, wq, F);
        }
        if constexpr (T::tail) {
            // The last K % 256 values: one 32-value block at a time, 8 lanes of 4 products
            // (the bias lanes as start, as above), d * dx per block; a min's products, m * ds,
            // summed apart.
            const int64_t runs = (K - blocks * SUPER) / 32;
            for (int64_t k = blocks * SUPER, j = 0; k < K; k += 32, ++j) {
                const uint8_t* block = row + blocks * T::bytes + j * T::tail_block;
                const __m256i wv = T::tail_values(block);
                const float d = half_to_float(block);
                [[maybe_unused]] const float m = T::tail_min(block);
                for (int r = 0; r < rows; ++r) {
                    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[r] + k));
                    const __m256i start = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[r] + k / 4));
                    __m256i sums;
#if defined(__AVX512VNNI__)
                    sums = _mm256_dpbusd_epi32(start, wv, xv);
#else
                    if constexpr (T::signed_weights)
                        sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)),
                                                 _mm256_set1_epi16(1));
                    else
                        sums = _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_maddubs_epi16(wv, xv), _mm256_set1_epi16(1)));
#endif
                    tail[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(d * xf[r][blocks * 16 + j]), tail[r]);
                    if constexpr (T::has_min) tail_min[r] += m * xf[r][blocks * 16 + runs + j];
                }
            }
        }
        for (int r = 0; r < rows; ++r) {
            vf total = acc[r][0];
            for (int a = 1; a < NACC; ++a) total = vadd(total, acc[r][a]);
            float sum = vhsum(total);
            if constexpr (T::tail) {
                __m128 t = _mm_add_ps(_mm256_castps256_ps128(tail[r]), _mm256_extractf128_ps(tail[r], 1));
                t = _mm_add_ps(t, _mm_movehl_ps(t, t));
                sum += _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
                if constexpr (T::has_min) sum += tail_min[r];
            }
            if constexpr (T::has_min) sum -= g16_sum_upper(acc_min[r]);
            if constexpr (T::min16) sum -= g16_sum(acc_min16[r]);
            y[r * ldy + n] = sum;
        }
    }
}

template <class T>
void gemm_type(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
               int64_t ldy, int64_t n_begin, int64_t n_end) {
    for (int64_t m = 0; m < M; ++m)
        prepare_row<T>(x + m * ldx, K, x_rows.q + m * K, x_rows.bias + m * (K / 4), x_rows.X + m * (K / 16),
                       x_rows.S + m * (K / 16));
    // Blocks of up to X_BLOCK rows of x (their layout, ~2.3 K bytes a row, stays in L2);
    // in each, weight rows outermost in pieces of a few rows, the row tiles of x inside: a
    // piece's bytes come from memory once per block and are read again from L1 by each
    // further tile.
    constexpr int64_t PIECE = 4, X_BLOCK = 64;
    for (int64_t m0 = 0; m0 < M; m0 += X_BLOCK) {
        const int64_t m1 = M - m0 < X_BLOCK ? M : m0 + X_BLOCK;
        for (int64_t n0 = n_begin; n0 < n_end; n0 += PIECE) {
            const int64_t n1 = n_end - n0 < PIECE ? n_end : n0 + PIECE;
            for (int64_t m = m0; m < m1; m += 4) {
                float* yt = y + m * ldy;
                switch (m1 - m < 4 ? m1 - m : 4) {
                    case 4: dot_rows<T, 4>(x_rows, m, w, ldw, yt, ldy, n0, n1); break;
                    case 3: dot_rows<T, 3>(x_rows, m, w, ldw, yt, ldy, n0, n1); break;
                    case 2: dot_rows<T, 2>(x_rows, m, w, ldw, yt, ldy, n0, n1); break;
                    default: dot_rows<T, 1>(x_rows, m, w, ldw, yt, ldy, n0, n1); break;
                }
            }
        }
    }
}

// ---- exact dequantization of whole rows (the prefill path's slabs) with the same decoders

// Row of K values (K a multiple of 256) to f32, as the format defines it: (factor) * (q - bias)
// then minus the min, two roundings, never fused.
template <class T>
void dequantize_row_with(const uint8_t* row, int64_t K, float* dst) {
    for (int64_t b = 0; b < K / SUPER; ++b) {
        vi w[SLOTS];
        g16 F;
        T::decode(row + b * T::bytes, w, F);
        alignas(64) float f[16];
        [[maybe_unused]] alignas(64) float mins[16];
        if constexpr (T::min16) {
            g16 M;
            T::mins(row + b * T::bytes, M);
            g16_store(mins, M);
        }
        g16_store(f, F);
        alignas(64) uint8_t q[SUPER];  // the slots' bytes: unsigned values (signed ones for signed_weights)
        for (int s = 0; s < SLOTS; ++s) {
#if defined(__AVX512F__)
            _mm512_store_si512(q + s * SLOT, w[s]);
#else
            _mm256_store_si256(reinterpret_cast<__m256i*>(q + s * SLOT), w[s]);
#endif
        }
        float* out = dst + b * SUPER;
        for (int p = 0; p < 8; ++p) {  // storage run p holds natural run order[p]
            const int run = T::order[p];
            for (int i = 0; i < 32; i += W) {
                const int v = 32 * run + i;
                // (stored - bias) * unit is the format's integer value, exactly; the factor
                // times unit is exact too (a power of two), so the product rounds as f * q.
                const vf stored = T::signed_weights ? vload_i8(reinterpret_cast<const int8_t*>(q + 32 * p + i))
                                                    : vload_u8(q + 32 * p + i);
                vf value = vmul(vset1(f[v / T::group] * T::unit(run)), vsub(stored, vset1(float(T::bias))));
                if constexpr (T::has_min) {
                    __asm__("" : "+v"(value));  // the product rounded on its own, as the definition
                    value = vsub(value, vset1(f[8 + run]));
                }
                if constexpr (T::min16) {  // i < 32 within the run: groups v / 16 (W = 8 or 16 divides 16)
                    __asm__("" : "+v"(value));
                    value = vsub(value, vset1(mins[v / 16]));
                }
                vstore(out + v, value);
            }
        }
    }
}

}  // namespace

bool quant_dot(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, dtype wt, int64_t ldw, float* y,
               int64_t ldy, int64_t n_begin, int64_t n_end) {
    switch (wt) {
        case dtype::q4_k: case dtype::q5_k: case dtype::q6_k: case dtype::q3_k: case dtype::q2_k: case dtype::iq4_xs:
            if (K % SUPER != 0) return false;
            break;
        case dtype::q8_0: case dtype::q4_0: case dtype::q4_1: case dtype::q5_0: case dtype::q5_1: case dtype::iq4_nl:
            if (K % 32 != 0) return false;
            break;
        default: return false;
    }
    if (!x_rows.resize(M, K)) return false;
    switch (wt) {
        case dtype::q4_k: gemm_type<q45_k<false>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q5_k: gemm_type<q45_k<true>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q6_k: gemm_type<q6_k>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q3_k: gemm_type<q3_k>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q2_k: gemm_type<q2_k>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::iq4_xs: gemm_type<iq4_xs>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q4_0: gemm_type<legacy<legacy_kind::q4_0>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q4_1: gemm_type<legacy<legacy_kind::q4_1>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q5_0: gemm_type<legacy<legacy_kind::q5_0>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::q5_1: gemm_type<legacy<legacy_kind::q5_1>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        case dtype::iq4_nl: gemm_type<legacy<legacy_kind::iq4_nl>>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
        default: gemm_type<q8_0>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end); break;
    }
    return true;
}

bool dequantize_row_fast(dtype wt, const uint8_t* row, int64_t K, float* dst) {
    if (K % SUPER != 0) return false;
    switch (wt) {
        case dtype::q4_k: dequantize_row_with<q45_k<false>>(row, K, dst); return true;
        case dtype::q5_k: dequantize_row_with<q45_k<true>>(row, K, dst); return true;
        case dtype::q6_k: dequantize_row_with<q6_k>(row, K, dst); return true;
        case dtype::q3_k: dequantize_row_with<q3_k>(row, K, dst); return true;
        case dtype::q2_k: dequantize_row_with<q2_k>(row, K, dst); return true;
        case dtype::iq4_xs: dequantize_row_with<iq4_xs>(row, K, dst); return true;
        case dtype::q4_0: dequantize_row_with<legacy<legacy_kind::q4_0>>(row, K, dst); return true;
        case dtype::q4_1: dequantize_row_with<legacy<legacy_kind::q4_1>>(row, K, dst); return true;
        case dtype::q5_0: dequantize_row_with<legacy<legacy_kind::q5_0>>(row, K, dst); return true;
        case dtype::q5_1: dequantize_row_with<legacy<legacy_kind::q5_1>>(row, K, dst); return true;
        case dtype::iq4_nl: dequantize_row_with<legacy<legacy_kind::iq4_nl>>(row, K, dst); return true;
        default: return false;
    }
}

void gemm_q8_0_int8(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                    int64_t ldy, int64_t n_begin, int64_t n_end) {
    if (!quant_dot(x, M, K, ldx, w, dtype::q8_0, ldw, y, ldy, n_begin, n_end))  // no memory for x's layout
        reference::gemm_q8_0_int8(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
}

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

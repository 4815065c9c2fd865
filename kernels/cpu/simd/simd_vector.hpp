// One f32 vector type and the few operations the kernels need, for the ISA this translation
// unit is compiled for (AVX-512: 16 lanes, AVX2: 8 lanes). The kernels are written once
// against these names and built once per ISA library.
//
// Everything here has internal linkage (anonymous namespace inside the ISA's namespace):
// an inline function compiled with -mavx512f must never become a linker-merged symbol that
// code for an older CPU could end up calling.
#pragma once

// GCC 12's AVX-512 headers build _mm512_undefined_ps() from a self-initialised variable, which
// -Wuninitialized reports wherever it is inlined (GCC PR105593); silence it for them only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>

#if !defined(LLMQ_KERNELS_ISA_NS)
#error "LLMQ_KERNELS_ISA_NS (the ISA's namespace) must be defined by the build"
#endif
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "the vector kernels need at least AVX2 + FMA + F16C"
#endif

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

inline float half_to_float(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

#if defined(__AVX512F__)

constexpr int W = 16;
using vf = __m512;

inline __mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float v) { return _mm512_set1_ps(v); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline vf vloadn(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline void vstoren(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, lanes(n), v); }
inline vf vload_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline vf vload_f16n(const uint16_t* p, int n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes(n), p));
}
inline vf widen_bf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline vf vload_bf16(const uint16_t* p) {
    return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline vf vload_bf16n(const uint16_t* p, int n) {
    return widen_bf16(_mm256_maskz_loadu_epi16(lanes(n), p));
}
inline vf vload_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline void vstore_f16(uint16_t* p, vf v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore_f16n(uint16_t* p, vf v, int n) {
    _mm256_mask_storeu_epi16(p, lanes(n),
                             _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// f32 -> bf16 with round to nearest even; NaN stays a quiet NaN (as fp32_to_bf16).
inline __m256i narrow_bf16(vf v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}
inline void vstore_bf16(uint16_t* p, vf v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), narrow_bf16(v));
}
inline void vstore_bf16n(uint16_t* p, vf v, int n) { _mm256_mask_storeu_epi16(p, lanes(n), narrow_bf16(v)); }

inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
inline vf vabs(vf a) { return _mm512_abs_ps(a); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c
inline float vhsum(vf a) { return _mm512_reduce_add_ps(a); }
inline float vhmax(vf a) { return _mm512_reduce_max_ps(a); }
// Lanes < n keep a, others become `fill`.
inline vf vkeep(vf a, int n, vf fill) { return _mm512_mask_blend_ps(lanes(n), fill, a); }
// The four horizontal sums of a, b, c, d, in that order.
inline __m128 hsum4(vf a, vf b, vf c, vf d) {
    const __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    const __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    const __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    const __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
// The eight horizontal sums of a[0..7], in order: pairwise unpack-and-add inside 128-bit
// chunks (8 -> 4 -> 2 vectors), then the four chunks added across (24 uops for 8 sums,
// against 38 for two hsum4).
inline __m256 hsum8(const vf* a) {
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
    const __m512 t2 = _mm512_add_ps(_mm512_unpacklo_ps(a[4], a[5]), _mm512_unpackhi_ps(a[4], a[5]));
    const __m512 t3 = _mm512_add_ps(_mm512_unpacklo_ps(a[6], a[7]), _mm512_unpackhi_ps(a[6], a[7]));
    // per 128-bit chunk: [a0, a1, a2, a3] (u0) and [a4, a5, a6, a7] (u1), partial over chunks
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_ps(t2, t3, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(t2, t3, _MM_SHUFFLE(3, 2, 3, 2)));
    // chunks [u0 c0+c2, u0 c1+c3, u1 c0+c2, u1 c1+c3], then adjacent chunks added
    const __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 z = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castps512_ps256(_mm512_shuffle_f32x4(z, z, _MM_SHUFFLE(0, 0, 2, 0)));
}
// Zero where x < limit (e^x underflows there; e^-inf must be exactly 0).
inline vf vzero_below(vf value, vf x, float limit) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(limit), _CMP_GE_OQ), value);
}
// +inf where x > limit (e^x overflows there).
inline vf vinf_above(vf value, vf x, float limit) {
    return _mm512_mask_mov_ps(value, _mm512_cmp_ps_mask(x, _mm512_set1_ps(limit), _CMP_GT_OQ),
                              _mm512_set1_ps(__builtin_inff()));
}
inline vf vround(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {  // 2^n for integral n in [-126, 127]
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
// Quantise one lane group: round(v) as int32 (nearest even), clamped to [-127, 127], to int8.
inline void vstore_q8(int8_t* p, vf v) {
    __m512i q = _mm512_cvtps_epi32(v);
    q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(q));
}

#else  // AVX2

constexpr int W = 8;
using vf = __m256;

inline __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float v) { return _mm256_set1_ps(v); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline vf vloadn(const float* p, int n) { return _mm256_maskload_ps(p, lane_mask(n)); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline void vstoren(float* p, vf v, int n) { _mm256_maskstore_ps(p, lane_mask(n), v); }
inline vf vload_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline vf vload_f16n(const uint16_t* p, int n) {
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, p, static_cast<std::size_t>(n) * 2);
    return vload_f16(tmp);
}
inline vf widen_bf16(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline vf vload_bf16(const uint16_t* p) {
    return widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline vf vload_bf16n(const uint16_t* p, int n) {
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, p, static_cast<std::size_t>(n) * 2);
    return vload_bf16(tmp);
}
inline vf vload_i8(const int8_t* p) {
    __m128i bytes;
    std::memcpy(&bytes, p, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
}
inline void vstore_f16(uint16_t* p, vf v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore_f16n(uint16_t* p, vf v, int n) {
    alignas(16) uint16_t tmp[8];
    vstore_f16(tmp, v);
    std::memcpy(p, tmp, static_cast<std::size_t>(n) * 2);
}
inline __m128i narrow_bf16(vf v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, quiet, nan);
    // Values are < 0x10000, so the unsigned-saturating pack is exact; fix the lane order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    return _mm256_castsi256_si128(packed);
}
inline void vstore_bf16(uint16_t* p, vf v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), narrow_bf16(v));
}
inline void vstore_bf16n(uint16_t* p, vf v, int n) {
    alignas(16) uint16_t tmp[8];
    vstore_bf16(tmp, v);
    std::memcpy(p, tmp, static_cast<std::size_t>(n) * 2);
}

inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
inline vf vabs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline float vhsum(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline float vhmax(vf a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline vf vkeep(vf a, int n, vf fill) {
    return _mm256_blendv_ps(fill, a, _mm256_castsi256_ps(lane_mask(n)));
}
inline __m128 hsum4(vf a, vf b, vf c, vf d) {
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
inline vf vzero_below(vf value, vf x, float limit) {
    return _mm256_and_ps(value, _mm256_cmp_ps(x, _mm256_set1_ps(limit), _CMP_GE_OQ));
}
inline vf vinf_above(vf value, vf x, float limit) {
    return _mm256_blendv_ps(value, _mm256_set1_ps(__builtin_inff()),
                            _mm256_cmp_ps(x, _mm256_set1_ps(limit), _CMP_GT_OQ));
}
inline vf vround(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
inline void vstore_q8(int8_t* p, vf v) {
    __m256i q = _mm256_cvtps_epi32(v);
    q = _mm256_max_epi32(_mm256_min_epi32(q, _mm256_set1_epi32(127)), _mm256_set1_epi32(-127));
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i bytes = _mm_packs_epi16(words, words);
    std::memcpy(p, &bytes, 8);
}

#endif

// e^x, Cephes-style: 2^n * p(r) with n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two
// so r is exact), p a degree-6 minimax polynomial. Max error ~2 ulp over [-87.3, 88.4];
// exactly 0 below -87.3 (so e^-inf = 0, where the true value would be subnormal) and +inf
// above 88.38 (the true value exceeds FLT_MAX from 88.72).
inline vf vexp(vf x) {
    const vf lo = vset1(-87.3365447505531f), hi = vset1(88.3762626647949f);
    const vf clamped = vmin(vmax(x, lo), hi);
    const vf n = vround(vmul(clamped, vset1(1.44269504088896341f)));
    vf r = vfma(n, vset1(-0.693359375f), clamped);
    r = vfma(n, vset1(2.12194440e-4f), r);
    vf p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
    return vinf_above(vzero_below(vmul(p, vpow2i(n)), x, -87.3365447505531f), x, 88.3762626647949f);
}

}  // namespace
}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

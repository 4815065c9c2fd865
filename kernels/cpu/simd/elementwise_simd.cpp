// Vectorised normalisation, activations, softmax and row conversions for one ISA.
//
// Conversions give bit-identical results to the scalar reference (same rounding rules);
// rms_norm, swiglu and softmax differ from it only by f32 summation order and the ~2 ulp of
// vexp.
#include "../reference/reference_kernels.hpp"
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

inline vf load_tail(const float* p, int64_t left) { return left >= W ? vload(p) : vloadn(p, int(left)); }
inline void store_tail(float* p, vf v, int64_t left) {
    if (left >= W) vstore(p, v);
    else vstoren(p, v, int(left));
}

void quantize_q8_0(const float* src, uint8_t* block, int64_t n) {
    for (int64_t b = 0; b < n / q8_0_block_values; ++b, block += q8_0_block_bytes) {
        const float* x = src + b * q8_0_block_values;
        vf amax = vzero();
        for (int i = 0; i < q8_0_block_values; i += W) amax = vmax(amax, vabs(vload(x + i)));
        const float d = vhmax(amax) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        std::memcpy(block, &dh, 2);
        auto* q = reinterpret_cast<int8_t*>(block + 2);
        for (int i = 0; i < q8_0_block_values; i += W) vstore_q8(q + i, vmul(vload(x + i), vset1(id)));
    }
}

void dequantize_q8_0(const uint8_t* block, float* dst, int64_t n) {
    for (int64_t b = 0; b < n / q8_0_block_values; ++b, block += q8_0_block_bytes) {
        const vf d = vset1(half_to_float(block));
        const auto* q = reinterpret_cast<const int8_t*>(block + 2);
        for (int i = 0; i < q8_0_block_values; i += W)
            vstore(dst + b * q8_0_block_values + i, vmul(d, vload_i8(q + i)));
    }
}

}  // namespace

void rms_norm_rows_entry(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                         float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        vf s0 = vzero(), s1 = vzero();
        int64_t i = 0;
        for (; i + 2 * W <= n; i += 2 * W) {
            const vf a = vload(xr + i), b = vload(xr + i + W);
            s0 = vfma(a, a, s0);
            s1 = vfma(b, b, s1);
        }
        for (; i < n; i += W) {
            const vf a = load_tail(xr + i, n - i);
            s0 = vfma(a, a, s0);
        }
        const double mean = double(vhsum(vadd(s0, s1))) / double(n);
        const vf inv = vset1(float(1.0 / __builtin_sqrt(mean + double(eps))));
        for (i = 0; i < n; i += W)
            store_tail(yr + i, vmul(vmul(load_tail(xr + i, n - i), inv), load_tail(weight + i, n - i)), n - i);
    }
}

void swiglu_entry(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; i += W) {
        const vf g = load_tail(gate + i, n - i);
        const vf silu = vdiv(g, vadd(vset1(1.0f), vexp(vsub(vzero(), g))));
        store_tail(out + i, vmul(silu, load_tail(up + i, n - i)), n - i);
    }
}

void softmax_entry(float* x, int64_t n) {
    if (n <= 0) return;
    const vf neg_inf = vset1(-__builtin_inff());
    vf vmaxv = neg_inf;
    for (int64_t i = 0; i < n; i += W) vmaxv = vmax(vmaxv, vkeep(load_tail(x + i, n - i), int(n - i), neg_inf));
    const vf max_value = vset1(vhmax(vmaxv));
    vf sum = vzero();
    for (int64_t i = 0; i < n; i += W) {
        vf e = vexp(vsub(load_tail(x + i, n - i), max_value));
        if (n - i < W) e = vkeep(e, int(n - i), vzero());
        sum = vadd(sum, e);
        store_tail(x + i, e, n - i);
    }
    const vf inv = vset1(1.0f / vhsum(sum));
    for (int64_t i = 0; i < n; i += W) store_tail(x + i, vmul(load_tail(x + i, n - i), inv), n - i);
}

// GELU with erf: x/2 (1 + erf(x / sqrt 2)), erf by Abramowitz and Stegun's 7.1.26 (|error|
// <= 1.5e-7): for z >= 0, erfc(z) = t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z^2) with
// t = 1 / (1 + p z). 1 + erf(x / sqrt 2) is then 2 - erfc(|z|) for x >= 0 and erfc(|z|) for
// x < 0, which keeps the negative tail free of cancellation.
void gelu_erf_entry(float* x, int64_t n) {
    const vf one = vset1(1.0f), two = vset1(2.0f);
    for (int64_t i = 0; i < n; i += W) {
        const vf v = load_tail(x + i, n - i);
        const vf z = vabs(vmul(v, vset1(0.70710678118654752f)));
        const vf t = vdiv(one, vfma(vset1(0.3275911f), z, one));
        vf p = vset1(1.061405429f);
        p = vfma(p, t, vset1(-1.453152027f));
        p = vfma(p, t, vset1(1.421413741f));
        p = vfma(p, t, vset1(-0.284496736f));
        p = vfma(p, t, vset1(0.254829592f));
        const vf erfc = vmul(vmul(p, t), vexp(vsub(vzero(), vmul(z, z))));
#if defined(__AVX512F__)
        const vf one_plus = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, vzero(), _CMP_LT_OQ), vsub(two, erfc), erfc);
#else
        const vf one_plus = _mm256_blendv_ps(vsub(two, erfc), erfc, _mm256_cmp_ps(v, vzero(), _CMP_LT_OQ));
#endif
        store_tail(x + i, vmul(vmul(vset1(0.5f), v), one_plus), n - i);
    }
}

void add_inplace_entry(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; i += W)
        store_tail(y + i, vadd(load_tail(y + i, n - i), load_tail(x + i, n - i)), n - i);
}

void row_to_f32_entry(dtype t, const void* src, float* dst, int64_t n) {
    switch (t) {
        case dtype::f16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; i += W)
                store_tail(dst + i, n - i >= W ? vload_f16(s + i) : vload_f16n(s + i, int(n - i)), n - i);
            return;
        }
        case dtype::bf16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; i += W)
                store_tail(dst + i, n - i >= W ? vload_bf16(s + i) : vload_bf16n(s + i, int(n - i)), n - i);
            return;
        }
        case dtype::q8_0: return dequantize_q8_0(static_cast<const uint8_t*>(src), dst, n);
        default: return reference::row_to_f32(t, src, dst, n);
    }
}

void row_from_f32_entry(dtype t, const float* src, void* dst, int64_t n) {
    switch (t) {
        case dtype::f16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; i += W) {
                if (n - i >= W) vstore_f16(d + i, vload(src + i));
                else vstore_f16n(d + i, vloadn(src + i, int(n - i)), int(n - i));
            }
            return;
        }
        case dtype::bf16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; i += W) {
                if (n - i >= W) vstore_bf16(d + i, vload(src + i));
                else vstore_bf16n(d + i, vloadn(src + i, int(n - i)), int(n - i));
            }
            return;
        }
        case dtype::q8_0: return quantize_q8_0(src, static_cast<uint8_t*>(dst), n);
        default: return reference::row_from_f32(t, src, dst, n);
    }
}

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

// Scalar reference: normalisation, activations, softmax, row conversions.
#include <cmath>

#include "float16_conversion.hpp"
#include "llmq/kernels/quant_blocks.hpp"
#include "reference_kernels.hpp"

namespace llmq::kernels::reference {

using scalar_float16::bf16_to_float;
using scalar_float16::float_to_bf16;
using scalar_float16::float_to_half;
using scalar_float16::half_to_float;

void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                   float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        double sum_squares = 0.0;
        for (int64_t i = 0; i < n; ++i) sum_squares += double(xr[i]) * xr[i];
        const float inv = float(1.0 / std::sqrt(sum_squares / double(n) + double(eps)));
        for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * weight[i];
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    float max_value = x[0];
    for (int64_t i = 1; i < n; ++i) max_value = x[i] > max_value ? x[i] : max_value;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max_value);
        sum += x[i];
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void gelu_erf(float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void add_inplace(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void row_to_f32(dtype t, const void* src, float* dst, int64_t n) {
    switch (t) {
        case dtype::f32: {
            const auto* s = static_cast<const float*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
            return;
        }
        case dtype::f16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(s[i]);
            return;
        }
        case dtype::bf16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(s[i]);
            return;
        }
        case dtype::q8_0: {
            const auto* block = static_cast<const uint8_t*>(src);
            for (int64_t b = 0; b < n / q8_0_block_values; ++b, block += q8_0_block_bytes) {
                const float d = half_to_float(uint16_t(block[0] | (block[1] << 8)));
                const auto* q = reinterpret_cast<const int8_t*>(block + 2);
                for (int i = 0; i < q8_0_block_values; ++i)
                    dst[b * q8_0_block_values + i] = d * float(q[i]);
            }
            return;
        }
        case dtype::i32: {
            const auto* s = static_cast<const int32_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return;
        }
        case dtype::u8: {
            const auto* s = static_cast<const uint8_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return;
        }
        default: return dequantize_blocks(t, src, dst, n);
    }
}

namespace {

// Round to nearest even (the FPU's default mode, as the vector paths' cvtps2dq), clamped
// to [lo, hi]; NaN becomes 0.
float round_clamped(float v, float lo, float hi) {
    const float r = std::nearbyint(v);
    if (!(r == r)) return 0.0f;
    return r < lo ? lo : (r > hi ? hi : r);
}

}  // namespace

void row_from_f32(dtype t, const float* src, void* dst, int64_t n) {
    switch (t) {
        case dtype::f32: {
            auto* d = static_cast<float*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = src[i];
            return;
        }
        case dtype::f16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = float_to_half(src[i]);
            return;
        }
        case dtype::bf16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16(src[i]);
            return;
        }
        case dtype::q8_0: {
            // GGUF Q8_0: d = max|x| / 127 per block of 32, q = round(x / d) computed as
            // x * (1 / d) with the f32 d (as ggml), d stored as fp16.
            auto* block = static_cast<uint8_t*>(dst);
            for (int64_t b = 0; b < n / q8_0_block_values; ++b, block += q8_0_block_bytes) {
                const float* x = src + b * q8_0_block_values;
                float amax = 0.0f;
                for (int i = 0; i < q8_0_block_values; ++i) {
                    const float a = std::fabs(x[i]);
                    amax = a > amax ? a : amax;
                }
                const float d = amax / 127.0f;
                const float id = d != 0.0f ? 1.0f / d : 0.0f;
                const uint16_t dh = float_to_half(d);
                block[0] = uint8_t(dh & 0xff);
                block[1] = uint8_t(dh >> 8);
                auto* q = reinterpret_cast<int8_t*>(block + 2);
                for (int i = 0; i < q8_0_block_values; ++i)
                    q[i] = int8_t(round_clamped(x[i] * id, -127.0f, 127.0f));
            }
            return;
        }
        case dtype::i32: {
            auto* d = static_cast<int32_t*>(dst);
            for (int64_t i = 0; i < n; ++i)
                d[i] = int32_t(round_clamped(src[i], -2147483520.0f, 2147483520.0f));
            return;
        }
        case dtype::u8: {
            auto* d = static_cast<uint8_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = uint8_t(round_clamped(src[i], 0.0f, 255.0f));
            return;
        }
        default: return quantize_blocks(t, src, dst, n);
    }
}

}  // namespace llmq::kernels::reference

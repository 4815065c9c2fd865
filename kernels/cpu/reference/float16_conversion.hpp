// The scalar conversions between f32 and fp16 / bf16, as inline functions with internal
// linkage for the scalar translation units (the public fp16_to_fp32 & co. and the reference
// row loops, which can then vectorise them). Never include this from an ISA variant: those
// use the hardware conversions (and must not share inline symbols with common code anyway).
//
// Both conversions from f32 round to nearest even and give the same bits as the hardware
// paths the ISA variants use (F16C vcvtps2ph with _MM_FROUND_TO_NEAREST_INT, vcvtph2ps;
// integer rounding for bf16), NaN and subnormals included, so a row converted on any ISA is
// the same row.
#pragma once

#include <cstdint>
#include <cstring>

namespace llmq::kernels::scalar_float16 {
namespace {

inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline float half_to_float(uint16_t h) {
    // Branch-free (so a row loop vectorises): shifted into place, a half's exponent field e
    // becomes e + 224 as an f32 exponent, and multiplying by 2^-112 rebiases it to e + 112;
    // e = 31 lands on 255, so inf stays inf and a NaN stays a NaN (quietened by the multiply,
    // as vcvtph2ps does). Subnormal halves (exponent 0) are m * 2^-24: the mantissa placed under
    // the exponent of 0.5 gives 0.5 + m * 2^-24, and subtracting 0.5 is exact.
    const uint32_t w = uint32_t(h) << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normal = bits_float((two_w >> 4) + (uint32_t(0xe0) << 23)) * 0x1.0p-112f;
    const float subnormal = bits_float((two_w >> 17) | (uint32_t(126) << 23)) - 0.5f;
    return bits_float(sign | (two_w < (uint32_t(1) << 27) ? float_bits(subnormal) : float_bits(normal)));
}

inline uint16_t float_to_half(float f) {
    uint32_t u = float_bits(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    uint32_t out;
    if (u > 0x7f800000u) {
        out = 0x7e00u | ((u >> 13) & 0x3ffu);  // quiet NaN, payload truncated
    } else if (u >= 0x47800000u) {
        out = 0x7c00u;  // >= 65536 (and inf): inf; [65520, 65536) carries into inf below
    } else if (u < 0x38800000u) {
        // Below the smallest normal half: adding 0.5 lets the FPU round the mantissa at the
        // subnormal half's last place (round to nearest even), then the bias is removed.
        const uint32_t magic = 126u << 23;  // 0.5f
        out = float_bits(bits_float(u) + bits_float(magic)) - magic;
    } else {
        const uint32_t odd = (u >> 13) & 1u;
        u += (uint32_t(15 - 127) << 23) + 0xfffu + odd;
        out = u >> 13;
    }
    return static_cast<uint16_t>(out | sign);
}

inline float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

inline uint16_t float_to_bf16(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace
}  // namespace llmq::kernels::scalar_float16

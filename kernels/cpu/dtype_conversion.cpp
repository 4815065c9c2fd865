// Scalar conversions between f32 and the 16-bit float formats, and dtype sizes.
//
// Both conversions from f32 round to nearest even and give the same bits as the hardware
// paths the ISA variants use (F16C vcvtps2ph with _MM_FROUND_TO_NEAREST_INT; integer
// rounding for bf16), NaN and subnormals included, so a row converted on any ISA is the
// same row.
#include <cstring>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels {
namespace {

uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        if (mantissa == 0) return bits_float(sign);
        // Subnormal half: normalise into an f32 exponent (each shift halves the value).
        uint32_t e = 113;
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            --e;
        }
        return bits_float(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
    }
    if (exponent == 31) {
        // Inf stays inf; a NaN keeps its payload and comes out quiet, as vcvtph2ps does.
        const uint32_t quiet = mantissa != 0 ? 0x400000u : 0u;
        return bits_float(sign | 0x7f800000u | quiet | (mantissa << 13));
    }
    return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t fp32_to_fp16(float f) {
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

float bf16_to_fp32(uint16_t b) { return bits_float(uint32_t(b) << 16); }

uint16_t fp32_to_bf16(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

std::size_t row_bytes(dtype t, int64_t n) {
    const auto count = static_cast<std::size_t>(n);
    switch (t) {
        case dtype::f32:
        case dtype::i32: return count * 4;
        case dtype::f16:
        case dtype::bf16: return count * 2;
        case dtype::q8_0: return count / q8_0_block_values * q8_0_block_bytes;
        case dtype::u8: return count;
    }
    return 0;
}

const char* dtype_name(dtype t) {
    switch (t) {
        case dtype::f32: return "f32";
        case dtype::f16: return "f16";
        case dtype::bf16: return "bf16";
        case dtype::q8_0: return "q8_0";
        case dtype::i32: return "i32";
        case dtype::u8: return "u8";
    }
    return "unknown";
}

}  // namespace llmq::kernels

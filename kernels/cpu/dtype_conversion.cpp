// dtype sizes and names, and the public scalar conversions between f32 and fp16 / bf16
// (implemented in reference/float16_conversion.hpp).
#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/quant_blocks.hpp"
#include "reference/float16_conversion.hpp"

namespace llmq::kernels {

float fp16_to_fp32(uint16_t h) { return scalar_float16::half_to_float(h); }
uint16_t fp32_to_fp16(float f) { return scalar_float16::float_to_half(f); }
float bf16_to_fp32(uint16_t b) { return scalar_float16::bf16_to_float(b); }
uint16_t fp32_to_bf16(float f) { return scalar_float16::float_to_bf16(f); }

std::size_t row_bytes(dtype t, int64_t n) {
    const auto count = static_cast<std::size_t>(n);
    switch (t) {
        case dtype::f32:
        case dtype::i32: return count * 4;
        case dtype::f16:
        case dtype::bf16: return count * 2;
        case dtype::q8_0: return count / q8_0_block_values * q8_0_block_bytes;
        case dtype::u8: return count;
        default: return count / std::size_t(block_values(t)) * std::size_t(block_bytes(t));
    }
}

const char* dtype_name(dtype t) {
    switch (t) {
        case dtype::f32: return "f32";
        case dtype::f16: return "f16";
        case dtype::bf16: return "bf16";
        case dtype::q8_0: return "q8_0";
        case dtype::i32: return "i32";
        case dtype::u8: return "u8";
        case dtype::q4_0: return "q4_0";
        case dtype::q4_1: return "q4_1";
        case dtype::q5_0: return "q5_0";
        case dtype::q5_1: return "q5_1";
        case dtype::q2_k: return "q2_k";
        case dtype::q3_k: return "q3_k";
        case dtype::q4_k: return "q4_k";
        case dtype::q5_k: return "q5_k";
        case dtype::q6_k: return "q6_k";
        case dtype::iq4_nl: return "iq4_nl";
        case dtype::iq4_xs: return "iq4_xs";
    }
    return "unknown";
}

}  // namespace llmq::kernels

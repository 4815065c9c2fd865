// The public scalar conversions between f32 and fp16 / bf16
// (implemented in reference/float16_conversion.hpp).
#include "llmq/kernels/cpu.hpp"
#include "reference/float16_conversion.hpp"

namespace llmq::kernels {

float fp16_to_fp32(uint16_t h) { return scalar_float16::half_to_float(h); }
uint16_t fp32_to_fp16(float f) { return scalar_float16::float_to_half(f); }
float bf16_to_fp32(uint16_t b) { return scalar_float16::bf16_to_float(b); }
uint16_t fp32_to_bf16(float f) { return scalar_float16::float_to_bf16(f); }

}  // namespace llmq::kernels

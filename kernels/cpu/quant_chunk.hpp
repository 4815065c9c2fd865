// One uniform form for up to 256 values of any block type (quant_blocks.hpp), so that one
// dequantizer and one integer dot product serve every type: value i of the chunk is
//
//   v[i] = (d[i / 32] * float(scale[i / 16])) * float(q[i]) - min[i / 16]   (min only if has_min)
//
// which is, operation for operation, each type's published dequantization. Private to
// kernels/; plain data only (each ISA library fills it with its own code).
#pragma once

#include <cstdint>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels::detail {

inline constexpr int chunk_values = 256;

struct quant_chunk {
    alignas(64) int8_t q[chunk_values];  // signed values, |q| <= 128
    int16_t scale[chunk_values / 16];    // integer multiplier of each group of 16
    float d[chunk_values / 32];          // f32 multiplier of each 32 values
    float min[chunk_values / 16];        // subtracted from each group of 16 (when has_min)
    bool has_min;
};

// A full chunk holds 256 values (one k-quant block, eight 32-value blocks); the bytes they take.
int chunk_bytes_of(dtype t);

// Scalar unpacking of `values` values (a multiple of the block, at most 256) of type t at
// `blocks` into `out` (defined in quant_decode.cpp; any ISA may call it).
void unpack_chunk(dtype t, const uint8_t* blocks, int values, quant_chunk& out);

// The 6-bit scale and min of group g < 8 of a q4_k / q5_k block, from its 12 packed bytes
// (internal linkage, so every ISA library inlines its own copy).
namespace {
inline void scale_min_k4(const uint8_t* s, int g, int& scale, int& min) {
    if (g < 4) {
        scale = s[g] & 63;
        min = s[g + 4] & 63;
    } else {
        scale = (s[g + 4] & 15) | (s[g - 4] >> 6) << 4;
        min = (s[g + 4] >> 4) | (s[g] >> 6) << 4;
    }
}
}  // namespace

// The values of a chunk as f32 (`values` of them), in the order of operations above.
void chunk_to_f32(const quant_chunk& c, int values, float* dst);

}  // namespace llmq::kernels::detail

// Value i of a row of Q4_0, Q4_K, Q5_K or Q6_K blocks, decoded on the device straight from the
// format's definition (GGML's block layouts, as kernels/include/llmq/kernels/quant_blocks.hpp
// describes them and kernels/cpu/quant_decode.cpp decodes them on the CPU):
//   q4_0 (32 values, 18 bytes): d (f16), 16 bytes of nibbles; value j < 16 is the low nibble
//        of byte j, value j + 16 its high nibble; v = d * (q - 8).
//   q4_k (256 values, 144 bytes): d, dmin (f16), 12 bytes of packed 6-bit scales and mins of
//        8 groups of 32, 128 bytes of nibbles (group g: bytes 32 * (g / 2) ..., the low nibble
//        for even g, the high one for odd g); v = d * scale_g * q - dmin * min_g.
//   q5_k (256 values, 176 bytes): as q4_k with 32 bytes of high bits after the scales (bit g
//        of byte l is the fifth bit of value l of group g) and the nibbles after them.
//   q6_k (256 values, 210 bytes): 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8
//        scales (one per 16 values), d (f16); v = d * scale * (q - 32).
// Rows start on a block; blocks are read bytewise (no alignment assumed).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels::cuda::detail {

__device__ __forceinline__ float half_at(const uint8_t* p) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(p[0] | (p[1] << 8))));
}

// The CPU's scale_min_k4 (kernels/cpu/quant_chunk.hpp), compiled for the device: the 6-bit
// scale and min of group g < 8 from a q4_k / q5_k block's 12 packed bytes.
__device__ __forceinline__ void scale_min_k4(const uint8_t* s, int g, int& scale, int& min) {
    if (g < 4) {
        scale = s[g] & 63;
        min = s[g + 4] & 63;
    } else {
        scale = (s[g + 4] & 15) | (s[g - 4] >> 6) << 4;
        min = (s[g + 4] >> 4) | (s[g] >> 6) << 4;
    }
}

__host__ __device__ constexpr bool is_block_quant(dtype t) {
    return t == dtype::q4_0 || t == dtype::q4_k || t == dtype::q5_k || t == dtype::q6_k;
}
__host__ __device__ constexpr int block_quant_values(dtype t) { return t == dtype::q4_0 ? 32 : 256; }
__host__ __device__ constexpr int block_quant_bytes(dtype t) {
    return t == dtype::q4_0 ? 18 : t == dtype::q4_k ? 144 : t == dtype::q5_k ? 176 : 210;
}

template <dtype T>
__device__ __forceinline__ float block_quant_value(const uint8_t* row, int64_t i) {
    constexpr int values = block_quant_values(T), bytes = block_quant_bytes(T);
    const uint8_t* b = row + (i / values) * bytes;
    const int e = int(i % values);
    if constexpr (T == dtype::q4_0) {
        const int q = e < 16 ? (b[2 + e] & 15) : (b[2 + e - 16] >> 4);
        return half_at(b) * float(q - 8);
    } else if constexpr (T == dtype::q4_k || T == dtype::q5_k) {
        const int g = e / 32, l = e % 32;
        int scale, min;
        scale_min_k4(b + 4, g, scale, min);
        const uint8_t* qs = T == dtype::q5_k ? b + 48 : b + 16;
        const uint8_t byte = qs[32 * (g / 2) + l];
        int q = g % 2 == 0 ? byte & 15 : byte >> 4;
        if constexpr (T == dtype::q5_k) q |= ((b[16 + l] >> g) & 1) << 4;
        return half_at(b) * float(scale) * float(q) - half_at(b + 2) * float(min);
    } else {
        const int h = e / 128, r = (e % 128) / 32, l = e % 32;
        const uint8_t low = b[64 * h + l + 32 * (r & 1)];
        const int lo = r < 2 ? low & 15 : low >> 4;
        const int hi = (b[128 + 32 * h + l] >> (2 * r)) & 3;
        const int scale = static_cast<int8_t>(b[192 + e / 16]);
        return half_at(b + 208) * float(scale) * float((lo | hi << 4) - 32);
    }
}

}  // namespace llmq::kernels::cuda::detail

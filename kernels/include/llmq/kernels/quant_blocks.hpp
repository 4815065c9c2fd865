// GGUF's block quantizations: the byte layout of every block type llmq reads, its exact
// dequantization and a quantizer that writes it.
//
// A row of n values of a block type is n / block_values(t) blocks stored back to back (no
// padding, no alignment: a row may start at any byte). Every multi-byte field is little-endian;
// "half" is an IEEE binary16. Layouts, as ggml defines them (values per block / bytes):
//
//   q4_0   32 / 18   half d; u8 qs[16]                 v[j] = (lo4(qs[j]) - 8) * d,
//                                                      v[j+16] = (hi4(qs[j]) - 8) * d
//   q4_1   32 / 20   half d, m; u8 qs[16]              v = q * d + m  (q as in q4_0, no -8)
//   q5_0   32 / 22   half d; u8 qh[4]; u8 qs[16]       5th bit of value j is bit j of the
//                                                      little-endian u32 qh; v = (q - 16) * d
//   q5_1   32 / 24   half d, m; u8 qh[4]; u8 qs[16]    v = q * d + m
//   iq4_nl 32 / 18   half d; u8 qs[16]                 v = d * codebook[nibble] (nibbles as q4_0)
//   q2_k  256 / 84   u8 scales[16]; u8 qs[64]; half d, dmin
//                    16 groups of 16: scale = d * lo4(scales[g]), min = dmin * hi4(scales[g]);
//                    v = scale * q - min, q = 2 bits: value 128h + 32s + 16i + l (h < 2,
//                    s < 4, i < 2, l < 16) is bits 2s..2s+1 of qs[32h + 16i + l], group 8h + 2s + i
//   q3_k  256 / 110  u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d
//                    16 groups of 16 with 6-bit scales s (stored packed, see below):
//                    v = d * (s - 32) * (q2 - (hmask bit ? 0 : 4)), q2 placed as in q2_k; the
//                    high bit of value e is bit e / 32 of hmask[e % 32]
//   q4_k  256 / 144  half d, dmin; u8 scales[12]; u8 qs[128]
//                    8 groups of 32 with 6-bit scale sc and min m (packed, below):
//                    v = (d * sc) * q - dmin * m; value 64c + l (l < 32) is lo4(qs[32c + l])
//                    in group 2c, value 64c + 32 + l is hi4(qs[32c + l]) in group 2c + 1
//   q5_k  256 / 176  half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
//                    as q4_k, 5th bit of value 32g + l is bit g of qh[l]
//   q6_k  256 / 210  u8 ql[128]; u8 qh[64]; i8 scales[16]; half d
//                    v = d * scales[g] * (q - 32), 16 groups of 16, q = 6 bits: value
//                    128h + 32r + l (r < 4, l < 32) takes its low 4 bits from
//                    ql[64h + l + 32 (r & 1)] (low nibble for r < 2, high for r >= 2), its high
//                    2 bits from bits 2r..2r+1 of qh[32h + l]; group 8h + 2r + l / 16
//   iq4_xs 256 / 136 half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]
//                    8 groups of 32: ls = nibble g of scales_l (low nibble first) | bits
//                    2g..2g+1 of scales_h << 4; v = d * (ls - 32) * codebook[nibble], nibbles
//                    of group g in qs[16g .. 16g+15] as q4_0
//
// Packed 6-bit scales of q4_k / q5_k (scale sc_g and min m_g of group g < 8, bytes b[12]):
//   g < 4:  sc = b[g] & 63,                         m = b[g + 4] & 63
//   g >= 4: sc = (b[g + 4] & 15) | (b[g - 4] >> 6) << 4,  m = (b[g + 4] >> 4) | (b[g] >> 6) << 4
// Packed scales of q3_k (s_g of group g < 16, 6 bits, bytes b[12]): the low 4 bits are the
// low nibble of b[g] for g < 8, the high nibble of b[g - 8] for g >= 8; the high 2 bits are
// bits 2 (g / 4) .. 2 (g / 4) + 1 of b[8 + g % 4].
//
// Arithmetic of the dequantization is f32, in exactly the order written above (the scale
// products first, then one multiply, then the subtraction or addition), so a row gives the same
// bits on every ISA and equals ggml's reference dequantization.
#pragma once

#include <cstddef>
#include <cstdint>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels {

// The 16 values of the iq4_nl / iq4_xs codebook.
extern const int8_t iq4_codebook[16];

// True for the block-quantized weight types of this header (q4_0 .. iq4_xs); false for f32,
// f16, bf16, q8_0 (which the GEMM handles with the plain dtypes), i32, u8.
constexpr bool is_block_quantized(dtype t) { return dtype_info_of(t).is_quantized() && t != dtype::q8_0; }
// Values and bytes of one block, from the dtype table (1 / element size for plain dtypes).
constexpr int block_values(dtype t) { return dtype_info_of(t).block_values; }
constexpr int block_bytes(dtype t) { return dtype_info_of(t).block_bytes; }

// The GEMMs (gemm in cpu.hpp) with at most this many rows of x (at most 32) and weights of type t
// quantize x per 32 values to int8 and sum integer products (the decode path); with more
// rows they compute in f32 on exactly dequantized weights. 0 for the types that are always
// f32 (f32, f16, bf16). The measured crossovers of docs/benchmarks.md ("kspeed") set them:
// q3_k .. q6_k, iq4_xs, q8_0 and the legacy 32-value types (q4_0, q4_1, q5_0, q5_1, iq4_nl;
// rows a multiple of 256 values) have a vector decoder of their own (kernels/cpu/simd/
// quant_dot_simd.cpp); q2_k and legacy rows of other lengths unpack through a staging chunk.
constexpr int64_t gemm_integer_max_rows(dtype t) {
    switch (t) {
        case dtype::q4_k: case dtype::q5_k: case dtype::q6_k: return 32;
        case dtype::q3_k: case dtype::iq4_xs: case dtype::q8_0: return 16;
        // (a switch, not is_block_quantized: the ISA libraries call this at run time and must
        // not reference the dtype table, a symbol of the common code)
        case dtype::q4_0: case dtype::q4_1: case dtype::q5_0: case dtype::q5_1: case dtype::iq4_nl: return 16;
        case dtype::q2_k: return 3;
        default: return 0;
    }
}

// Whether, on an ISA with AVX-512 VNNI (isa::avx512_bf16), the GEMMs with more rows than
// gemm_integer_max_rows(t) (prefill) also quantize x per 32 values and sum int8 products, as
// the decode path does (same error bound), on rows of K values that it takes (a multiple of
// 256): the types where that measured faster than the f32 GEMM on exactly dequantized slabs
// (docs/benchmarks.md, "kquant2": q4_k 1.4x, q5_k 1.2x, the legacy 32-value types ~1.1x; q3_k,
// q6_k, iq4_xs and iq4_nl stay on the slabs, where their lookups or bias lanes cost more).
// The other ISAs, and the other types and lengths, compute prefill in f32 on the slabs.
constexpr bool quant_prefill_is_integer(dtype t, int64_t K) {
    switch (t) {
        case dtype::q4_k: case dtype::q5_k: case dtype::q4_0: case dtype::q4_1: case dtype::q5_0: case dtype::q5_1:
            return K % 256 == 0;
        default: return false;
    }
}

// Dequantizes n values (n a multiple of block_values(t)) of block type t, exactly as above.
// Any bytes are valid input (a NaN or infinite scale gives NaN or infinite values; nothing is
// read past n / block_values(t) blocks). The scalar reference; row_to_f32 reaches it too.
void dequantize_blocks(dtype t, const void* src, float* dst, int64_t n);

// Quantizes n values (a multiple of block_values(t)) to blocks of t: per block (and per group
// of the k-quants) the scales and mins are chosen by a search that minimises the squared error
// of the dequantized block, then the packed scales are rounded and the q values recomputed
// with them. Deterministic; NaN inputs give unspecified q. row_from_f32 reaches it too.
void quantize_blocks(dtype t, const float* src, void* dst, int64_t n);

}  // namespace llmq::kernels

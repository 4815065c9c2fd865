// Q8_0 GEMM with int8 dot products (llama.cpp's Q8_0 x Q8_0): x is quantised to Q8_0 per row
// and 32-value block on the fly (d = max|x| / 127, round to nearest even, saturated to int8),
// each block pair is an exact int8 dot product, scaled by both d and summed in f32. The result
// is off the f32 product by at most sum |x^ - x| |w| (each x moves by at most d / 2). K must
// be a multiple of 32; arguments as gemm(). The calling thread keeps the quantised rows
// between calls. gemm() takes this path for Q8_0 weights with at most
// gemm_integer_max_rows(dtype::q8_0) rows (quant_blocks.hpp), where it is faster than widening
// the weights to f32 (docs/benchmarks.md, section "kspeed"); this entry takes it for any M.
//
// Paths (kernels/cpu/simd/quant_dot_simd.cpp): AVX-512 VNNI (vpdpbusd on w + 128, the offset
// taken back through x's per-call bias lanes) in the avx512_bf16 library; vpmaddubsw with the
// sign trick in the avx2 and avx512 ones; the scalar reference sums the same integers.
#pragma once

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels {

void gemm_q8_0_int8(isa which, const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw,
                    float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
// "AVX-512 VNNI (vpdpbusd)", "AVX2 (vpmaddubsw)", ...: the path used for `which`.
const char* gemm_q8_0_int8_path(isa which);

}  // namespace llmq::kernels

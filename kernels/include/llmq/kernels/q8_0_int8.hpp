// Opt-in Q8_0 GEMM with int8 dot products (llama.cpp's Q8_0 x Q8_0), beside the exact gemm():
// x is quantised to Q8_0 per row and 32-value block on the fly (d = max|x| / 127, round to
// nearest even, saturated to int8), each block pair is an exact int8 dot product, scaled by
// both d and summed in f32. The result is off the f32 product by at most sum |x^ - x| |w|
// (each x moves by at most d / 2). K must be a multiple of 32; arguments as gemm(). The
// calling thread keeps the quantised rows (at most 64 rows of K bytes) between calls.
//
// Paths: AVX-512 VNNI (vpdpbusd, x offset by 128, the sum started at -128 * sum(w)) in the
// avx512_bf16 library; AVX2 (vpmaddubsw with the sign trick) in the avx2 and avx512 ones; the
// scalar reference sums the same integers. Not yet the default: on the machine of
// docs/benchmarks.md it is slower than widening the weights to f32 (see there).
#pragma once

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels {

void gemm_q8_0_int8(isa which, const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw,
                    float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
// "AVX-512 VNNI (vpdpbusd)", "AVX2 (vpmaddubsw)", "scalar reference": the path used for `which`.
const char* gemm_q8_0_int8_path(isa which);

}  // namespace llmq::kernels

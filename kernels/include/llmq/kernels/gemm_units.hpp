// The arithmetic units of the CPU GEMM: which numerics gemm() uses for given arguments, and
// probes of the peak of each unit, for benchmarks that hold a figure to the unit it runs on
// (the FMA peak, measure_fma_peak_gflops, is in cpu.hpp with the other machine limits).
#pragma once

#include <cstdint>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels {

// Whether gemm() quantizes x per 32-value block for these arguments (the integer dot
// products: the decode path of cpu.hpp, M <= gemm_integer_max_rows(wt), and Q8_0 prefill on
// avx512_bf16, whose VNNI micro-kernels take every M > 16 with the same quantization of x:
// their unit is vpdpbusd; and on avx512_bf16 the prefill of the types and row lengths K that
// quant_prefill_is_integer names, which run the decode kernels at every M); otherwise x is
// used as given and the arithmetic is f32 FMA.
bool gemm_quantizes_x(isa which, dtype wt, int64_t M, int64_t K);

// Peak of the AVX-512 BF16 dot-product unit in GFLOP/s (vdpbf16ps: 2 products per f32 lane,
// 4 flops per lane per instruction), independent chains in registers on `threads` threads of
// its own; 0 when `which` (as usable_isa) has no AVX-512 BF16. What gemm_bf16_dot can reach.
double measure_bf16_dot_peak_gflops(isa which, int threads, probe_clock clock = probe_clock::wall);
// Peak of the VNNI int8 dot-product unit in GOP/s (vpdpbusd: 4 u8 x s8 products per int32
// lane, 8 ops per lane per instruction, a multiply and an add each like a flop); 0 when
// `which` has no AVX-512 VNNI (avx512_bf16 has it). What Q8_0 prefill on avx512_bf16 can reach.
double measure_int8_dot_peak_gops(isa which, int threads, probe_clock clock = probe_clock::wall);

}  // namespace llmq::kernels

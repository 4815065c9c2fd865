// The function table each ISA variant of the kernels fills in, and how the dispatcher finds
// them. Private to kernels/.
//
// Every ISA variant is the same set of sources compiled with that ISA's flags into its own
// static library; all its code lives in namespace llmq::kernels::<isa> (and anonymous
// namespaces inside it), so no inline function or template compiled with -mavx512f can be
// merged by the linker into code that runs on a CPU without it. Common code reaches an
// ISA only through the pointers below, after checking isa_supported().
#pragma once

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels::detail {

// The GEMM drivers by M (simd/gemm_simd.cpp): direct row tiles up to gemm_direct_max_m rows,
// direct tiles with the column tile outermost up to gemm_small_max_m, packed panels above.
inline constexpr int64_t gemm_direct_max_m = 3;
inline constexpr int64_t gemm_small_max_m = 16;

struct kernel_table {
    isa which;

    void (*gemm)(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                 int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
    // NULL where the ISA has no bf16 dot product; the dispatcher then widens x to f32.
    void (*gemm_bf16_dot)(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const void* w,
                          int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
    void (*paged_attention)(const paged_attention_params& p, int64_t item_begin,
                            int64_t item_end);

    void (*rms_norm_rows)(const float* x, const float* weight, float* y, int64_t rows,
                          int64_t n, float eps);
    void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
    void (*softmax)(float* x, int64_t n);
    void (*add_inplace)(float* y, const float* x, int64_t n);
    void (*row_to_f32)(dtype t, const void* src, float* dst, int64_t n);
    void (*row_from_f32)(dtype t, const float* src, void* dst, int64_t n);

    // Runs `iterations` rounds of independent FMA chains held in registers; returns the
    // number of floating-point operations done (2 per lane per FMA).
    double (*fma_loop)(int64_t iterations);
    // Sums `count` 64-bit words read as eight interleaved sequential streams (the memory
    // bandwidth probe's loop, with this ISA's widest loads).
    uint64_t (*sum_words)(const uint64_t* words, std::size_t count);

    // GEMM for block-quantized weights (is_block_quantized(wt)); same contract as gemm.
    void (*quant_gemm)(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                       int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);

    // As fma_loop for vdpbf16ps (4 flops per lane) and vpdpbusd (8 ops per lane); NULL where
    // the ISA lacks the instruction.
    double (*bf16_dot_loop)(int64_t iterations);
    double (*int8_dot_loop)(int64_t iterations);

    // x/2 * (1 + erf(x / sqrt 2)) in place over n values (vision.hpp's gelu_erf).
    void (*gelu_erf)(float* x, int64_t n);
};

// Defined in reference/kernel_table_reference.cpp (always built).
const kernel_table& scalar_table();

// Defined in simd/kernel_table_simd.cpp once per ISA library; only declared here, and only
// referenced when the build defines LLMQ_KERNELS_HAVE_<ISA>.
const kernel_table& avx2_table();
const kernel_table& avx512_table();
const kernel_table& avx512_bf16_table();
// simd/gemm_amx.cpp (its own library, avx512_bf16's flags plus AMX's): avx512_bf16_table()
// with the prefill GEMM entries that AMX tiles take.
const kernel_table& amx_table();

// The Q8_0 int8-dot GEMM of each ISA library (simd/quant_dot_simd.cpp), reached only through
// gemm_q8_0_int8() in kernel_dispatch.cpp after checking isa_supported().
#define LLMQ_DECLARE_GEMM_Q8_0_INT8(ns)                                                                      \
    namespace ns {                                                                                       \
    void gemm_q8_0_int8(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, \
                        float* y, int64_t ldy, int64_t n_begin, int64_t n_end);                          \
    }

// The table for usable_isa(which).
const kernel_table& table_for(isa which);

}  // namespace llmq::kernels::detail

namespace llmq::kernels {
LLMQ_DECLARE_GEMM_Q8_0_INT8(avx2)
LLMQ_DECLARE_GEMM_Q8_0_INT8(avx512)
LLMQ_DECLARE_GEMM_Q8_0_INT8(avx512_bf16)
}  // namespace llmq::kernels

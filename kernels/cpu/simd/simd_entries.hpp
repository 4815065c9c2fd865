// The entry points of one ISA variant's kernels, gathered into its table by
// kernel_table_simd.cpp. They live in namespace llmq::kernels::<isa>, so each ISA library
// defines its own distinct symbols.
#pragma once

#include "../kernel_table.hpp"

#if !defined(LLMQ_KERNELS_ISA_NS)
#error "LLMQ_KERNELS_ISA_NS (the ISA's namespace) must be defined by the build"
#endif

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {

void gemm_entry(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
// Q8_0 weights times x quantised to Q8_0 on the fly, int8 dot products (quant_dot_simd.cpp).
void gemm_q8_0_int8(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                    int64_t ldy, int64_t n_begin, int64_t n_end);
#if defined(__AVX512BF16__)
void gemm_bf16_dot_entry(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const void* w,
                         int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
#endif
#if defined(__AVX512BF16__) && defined(__AVX512VNNI__)
// gemm_panels_simd.cpp: prefill GEMMs as outer-product micro-kernels on packed panels, Q8_0
// weights with VNNI int8 dot products on x quantized per block, and bf16 weights with
// vdpbf16ps on x already rounded to bf16 (gemm_bf16_dot). False, having done nothing, when
// their buffers cannot be allocated.
bool gemm_panels_q8_0(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                      int64_t ldy, int64_t n_begin, int64_t n_end);
bool gemm_panels_bf16_dot(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw,
                          float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
#endif
void paged_attention_entry(const paged_attention_params& p, int64_t item_begin,
                           int64_t item_end);
void rms_norm_rows_entry(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                         float eps);
void swiglu_entry(const float* gate, const float* up, float* out, int64_t n);
void softmax_entry(float* x, int64_t n);
void gelu_erf_entry(float* x, int64_t n);
void add_inplace_entry(float* y, const float* x, int64_t n);
void row_to_f32_entry(dtype t, const void* src, float* dst, int64_t n);
void row_from_f32_entry(dtype t, const float* src, void* dst, int64_t n);
double fma_loop_entry(int64_t iterations);
uint64_t sum_words_entry(const uint64_t* words, std::size_t count);
#if defined(__AVX512BF16__)
double bf16_dot_loop_entry(int64_t iterations);
#endif
#if defined(__AVX512VNNI__)
double int8_dot_loop_entry(int64_t iterations);
#endif
// quant_gemm_simd.cpp
void quant_gemm_entry(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                      int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
// quant_dot_simd.cpp: the decode path of the types it has a decoder for (q2_k .. q6_k and
// iq4_xs with K a multiple of 256; q8_0, q4_0, q4_1, q5_0, q5_1 and iq4_nl with K a multiple
// of 32); false, having done nothing, for any other type or length or when its buffers cannot be
// allocated.
bool quant_dot(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, dtype wt, int64_t ldw, float* y,
               int64_t ldy, int64_t n_begin, int64_t n_end);
// The exact dequantization of one row with the same decoders (q2_k .. q6_k, iq4_xs and the
// legacy 32-value types; K a multiple of 256); false, having done nothing, otherwise.
bool dequantize_row_fast(dtype wt, const uint8_t* row, int64_t K, float* dst);

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

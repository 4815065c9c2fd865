// The scalar reference kernels: plain loops, built with no ISA flags. They are the isa::scalar
// entries of the dispatch table (the fallback on any CPU) and what the conformance tests
// compare every vectorised variant against. Private to kernels/.
#pragma once

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels::reference {

void gemm(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
          int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
// Q8_0 weights times x quantised to Q8_0 per block, int8 dot products (gemm_q8_0_reference.cpp).
void gemm_q8_0_int8(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw, float* y,
                    int64_t ldy, int64_t n_begin, int64_t n_end);
void gemm_bf16_dot(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const void* w,
                   int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);

void paged_attention(const paged_attention_params& p, int64_t item_begin, int64_t item_end);

void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                   float eps);
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void softmax(float* x, int64_t n);
void gelu_erf(float* x, int64_t n);  // std::erf per value
void add_inplace(float* y, const float* x, int64_t n);
void row_to_f32(dtype t, const void* src, float* dst, int64_t n);
void row_from_f32(dtype t, const float* src, void* dst, int64_t n);

// Block-quantized weights (quant_gemm_reference.cpp): the GEMM, and the quantization of
// activation rows for its integer path (quant_activations.hpp).
void quant_gemm(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
void quantize_activations(const float* x, int64_t K, int8_t* q, float* d, float* sum16);
// The same GEMM with no buffers (each chunk of weights dequantized on the stack, f32 dots):
// what every path falls back to when its buffers cannot be allocated.
void quant_gemm_unbuffered(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
                           int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);

double fma_loop(int64_t iterations);
uint64_t sum_words(const uint64_t* words, std::size_t count);

}  // namespace llmq::kernels::reference

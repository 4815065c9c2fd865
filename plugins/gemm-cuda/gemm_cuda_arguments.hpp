// gemm-cuda's argument checks: every field of llmq_matmul_args against the GPU contract,
// turned into the plain numbers the call needs (gemm_call). Header-only and free of CUDA
// headers, so tests/cuda checks the refusals on machines without a GPU.
#pragma once

#include <cstdint>

#include "../cuda-common/cuda_plugin_checks.hpp"
#include "gemm_plan_cache.hpp"

namespace llmq::gemm_cuda {

using cuda_plugin::fail;

using plugin_checks::max_dimension;
using plugin_checks::max_stride;

// A checked call: the shape key for the plan cache plus the pointers.
struct gemm_call {
    gemm_shape shape;  // M, N, K, leading dimensions in elements (w: bytes for Q8_0), types, alignments
    const void* x = nullptr;
    const void* w = nullptr;
    void* y = nullptr;
    int64_t ldw_bytes = 0;
};

// Block-quantized weight types gemm-cuda takes: q8_0 (q8_0_gemm.cu) and q4_0, q4_k, q5_k,
// q6_k (block_quant_gemm.cu); any activation type multiplies them.
inline bool quantized_weight(int32_t t) {
    return t == LLMQ_DTYPE_Q8_0 || t == LLMQ_DTYPE_Q4_0 || t == LLMQ_DTYPE_Q4_K || t == LLMQ_DTYPE_Q5_K ||
           t == LLMQ_DTYPE_Q6_K;
}

inline llmq_status check_matrix(const llmq_tensor& t, int32_t device, const char* name, llmq_error* error) {
    if (llmq_status s = cuda_plugin::check_on_device(t, device, "matmul", name, error); s != LLMQ_OK) return s;
    return plugin_checks::check_matrix_layout(t, "matmul", name, error);
}

// Rows of `row_bytes`, elements `element` bytes apart (0: block-quantized, rows 2-byte
// aligned; every block of those types has an even size).
inline llmq_status check_rows(const llmq_tensor& t, const char* name, int64_t element, int64_t row_bytes,
                              llmq_error* error) {
    if (t.strides[1] != element)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: %s.strides[1] is %" PRId64 ", rows of %s must be contiguous (stride %" PRId64 ")", name,
                    t.strides[1], cuda_plugin::dtype_label(t.dtype), element);
    const int64_t unit = element > 0 ? element : 2;
    if (reinterpret_cast<uintptr_t>(t.data) % uint64_t(unit) != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: %s.data is not aligned to %" PRId64 " bytes", name,
                    unit);
    if (t.shape[0] > 1 && (t.strides[0] < row_bytes || t.strides[0] % unit != 0))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: %s.strides[0] is %" PRId64 ", a row needs %" PRId64 " bytes (and a multiple of %" PRId64 ")",
                    name, t.strides[0], row_bytes, unit);
    return LLMQ_OK;
}

// Checks `a` for a plugin instance serving cuda:`device`; fills `call` on success.
inline llmq_status check_matmul(const llmq_matmul_args* a, int32_t device, gemm_call* call, llmq_error* error) {
    if (a == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: args is NULL");
    if (a->struct_size < sizeof(llmq_matmul_args))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: args.struct_size is %u, expected at least %zu",
                    a->struct_size, sizeof(llmq_matmul_args));
    llmq_status s;
    if ((s = check_matrix(a->x, device, "x", error)) != LLMQ_OK) return s;
    if ((s = check_matrix(a->w, device, "w", error)) != LLMQ_OK) return s;
    if ((s = check_matrix(a->y, device, "y", error)) != LLMQ_OK) return s;
    const int32_t xt = a->x.dtype, wt = a->w.dtype, yt = a->y.dtype;
    if (!cuda_plugin::is_activation(xt))
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: x.dtype is %s, gemm-cuda takes f32, f16 or bf16 activations",
                    cuda_plugin::dtype_label(xt));
    if (!cuda_plugin::is_activation(yt))
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: y.dtype is %s, gemm-cuda writes f32, f16 or bf16",
                    cuda_plugin::dtype_label(yt));
    if (!cuda_plugin::is_activation(wt) && !quantized_weight(wt))
        return fail(error, LLMQ_STATUS_UNSUPPORTED,
                    "matmul: w.dtype is %s, not a weight type (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)",
                    cuda_plugin::dtype_label(wt));
    if (!quantized_weight(wt) && xt != wt)
        return fail(error, LLMQ_STATUS_UNSUPPORTED,
                    "matmul: x is %s but w is %s; gemm-cuda multiplies like types (or any activation by a "
                    "block-quantized weight)",
                    cuda_plugin::dtype_label(xt), cuda_plugin::dtype_label(wt));
    // cuBLASLt writes x's type or f32 (f32 inputs: f32 only); the q8_0 tiles go through it too.
    if (yt != xt && yt != LLMQ_DTYPE_F32)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: y.dtype is %s; with %s x, y is %s%s",
                    cuda_plugin::dtype_label(yt), cuda_plugin::dtype_label(xt), cuda_plugin::dtype_label(xt),
                    xt == LLMQ_DTYPE_F32 ? "" : " or f32");
    const int64_t M = a->x.shape[0], K = a->x.shape[1], N = a->w.shape[0];
    if (llmq_status s = plugin_checks::check_matmul_shapes(*a, error); s != LLMQ_OK) return s;
    if (quantized_weight(wt)) {
        const int64_t block = kernels::dtype_info_of(static_cast<kernels::dtype>(wt)).block_values;
        if (K % block != 0)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "matmul: w is %s with K = %" PRId64 ", not a multiple of %" PRId64, cuda_plugin::dtype_label(wt),
                        K, block);
    }
    const int64_t xe = cuda_plugin::element_bytes(xt), ye = cuda_plugin::element_bytes(yt);
    if ((s = check_rows(a->x, "x", xe, K * xe, error)) != LLMQ_OK) return s;
    if ((s = check_rows(a->y, "y", ye, N * ye, error)) != LLMQ_OK) return s;
    const int64_t we = cuda_plugin::element_bytes(wt);  // 0 for block-quantized types
    const int64_t w_row = int64_t(kernels::row_bytes(static_cast<kernels::dtype>(wt), K));
    if ((s = check_rows(a->w, "w", we, w_row, error)) != LLMQ_OK) return s;

    // Leading dimensions: a single row's stride may be anything (even 0); use the packed one.
    auto leading = [](const llmq_tensor& t, int64_t row_bytes, int64_t unit) {
        return (t.shape[0] > 1 ? t.strides[0] : row_bytes) / unit;
    };
    gemm_shape& g = call->shape;
    g = gemm_shape{};
    g.M = M;
    g.N = N;
    g.K = K;
    g.x_type = xt;
    g.w_type = wt;
    g.y_type = yt;
    g.ldx = leading(a->x, K * xe, xe);
    g.ldy = leading(a->y, N * ye, ye);
    call->ldw_bytes = leading(a->w, w_row, 1);
    g.ldw = quantized_weight(wt) ? call->ldw_bytes : call->ldw_bytes / we;
    // What cuBLASLt may assume about every row's start: the pointer's and the row stride's.
    auto row_alignment = [](const void* p, int64_t ld_bytes) {
        const uint32_t pa = cuda_plugin::alignment_of(reinterpret_cast<uintptr_t>(p));
        const uint32_t la = cuda_plugin::alignment_of(uintptr_t(ld_bytes));
        return pa < la ? pa : la;
    };
    g.x_alignment = row_alignment(a->x.data, g.ldx * xe);
    g.w_alignment = row_alignment(a->w.data, call->ldw_bytes);
    g.y_alignment = row_alignment(a->y.data, g.ldy * ye);
    call->x = a->x.data;
    call->w = a->w.data;
    call->y = a->y.data;
    return LLMQ_OK;
}

}  // namespace llmq::gemm_cuda

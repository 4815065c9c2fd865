// Q4_0, Q4_K, Q5_K and Q6_K weights on the GPU, as Q8_0's (q8_0_gemm.cu): a GEMV that reads
// the blocks directly for decode (up to 16 rows of x) and a dequantizer of weight rows into
// f32/f16/bf16 tiles for cuBLASLt (larger M). Both decode every value with
// block_quant_value (block_quant_values.cuh), the format's definition; they are written to
// be plainly right first: the GEMV's lane l takes values l, l + 32, l + 64, ... of the row, so
// the x reads of a warp are contiguous and each value's scales are re-read from L1 (no
// vectorised block decode yet; docs/cuda.md).
#include "block_quant_values.cuh"
#include "device_types.cuh"
#include "llmq/kernels/cuda.hpp"

namespace llmq::kernels::cuda {
namespace {

using detail::block_quant_value;

constexpr int gemv_warps = 8;

template <dtype W, typename XT, int MAX_ROWS>
__global__ void __launch_bounds__(gemv_warps * 32)
    block_quant_gemv_kernel(const XT* __restrict__ x, int M, int64_t K, int64_t ldx, const uint8_t* __restrict__ w,
                            int64_t ldw, int64_t N, dtype y_t, void* y, int64_t ldy) {
    const int lane = threadIdx.x % 32;
    const int64_t n = int64_t(blockIdx.x) * gemv_warps + threadIdx.x / 32;
    if (n >= N) return;
    const uint8_t* row = w + n * ldw;
    float acc[MAX_ROWS];
#pragma unroll
    for (int m = 0; m < MAX_ROWS; ++m) acc[m] = 0.0f;
    for (int64_t k = lane; k < K; k += 32) {
        const float wv = block_quant_value<W>(row, k);
#pragma unroll
        for (int m = 0; m < MAX_ROWS; ++m)
            if (m < M) acc[m] = fmaf(wv, detail::to_float(x[m * ldx + k]), acc[m]);
    }
#pragma unroll
    for (int m = 0; m < MAX_ROWS; ++m) {
        if (m >= M) break;
        const float total = detail::warp_sum(acc[m]);
        if (lane == 0) detail::store(y_t, y, m * ldy + n, total);
    }
}

template <dtype W, typename XT>
void launch_gemv(const void* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw, int64_t N, dtype y_t,
                 void* y, int64_t ldy, cudaStream_t stream) {
    const unsigned grid = unsigned((N + gemv_warps - 1) / gemv_warps);
    const auto* xt = static_cast<const XT*>(x);
    const auto* wt = static_cast<const uint8_t*>(w);
    const int rows = int(M);
    if (M <= 1)
        block_quant_gemv_kernel<W, XT, 1><<<grid, gemv_warps * 32, 0, stream>>>(xt, rows, K, ldx, wt, ldw, N, y_t, y, ldy);
    else if (M <= 4)
        block_quant_gemv_kernel<W, XT, 4><<<grid, gemv_warps * 32, 0, stream>>>(xt, rows, K, ldx, wt, ldw, N, y_t, y, ldy);
    else
        block_quant_gemv_kernel<W, XT, 16><<<grid, gemv_warps * 32, 0, stream>>>(xt, rows, K, ldx, wt, ldw, N, y_t, y,
                                                                                  ldy);
}

template <dtype W>
void gemv_for_x(dtype act, const void* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw, int64_t N,
                dtype y_t, void* y, int64_t ldy, cudaStream_t stream) {
    switch (act) {
        case dtype::f16: return launch_gemv<W, __half>(x, M, K, ldx, w, ldw, N, y_t, y, ldy, stream);
        case dtype::bf16: return launch_gemv<W, __nv_bfloat16>(x, M, K, ldx, w, ldw, N, y_t, y, ldy, stream);
        default: return launch_gemv<W, float>(x, M, K, ldx, w, ldw, N, y_t, y, ldy, stream);
    }
}

// One thread per value: (row r, value k).
template <dtype W, typename OT>
__global__ void block_quant_dequantize_kernel(const uint8_t* __restrict__ w, int64_t ldw, int64_t rows, int64_t K,
                                              OT* __restrict__ out, int64_t ld_out) {
    const int64_t total = rows * K;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / K, k = e % K;
        out[r * ld_out + k] = detail::from_float<OT>(block_quant_value<W>(w + r * ldw, k));
    }
}

template <dtype W>
void dequantize_to(const void* w, int64_t ldw, int64_t rows, int64_t K, dtype out_t, void* out, int64_t ld_out,
                   cudaStream_t stream) {
    const int64_t wanted = (rows * K + 255) / 256;
    const unsigned grid = unsigned(wanted < 65535 * 16 ? wanted : 65535 * 16);
    const auto* wt = static_cast<const uint8_t*>(w);
    switch (out_t) {
        case dtype::f16:
            block_quant_dequantize_kernel<W><<<grid, 256, 0, stream>>>(wt, ldw, rows, K, static_cast<__half*>(out), ld_out);
            break;
        case dtype::bf16:
            block_quant_dequantize_kernel<W>
                <<<grid, 256, 0, stream>>>(wt, ldw, rows, K, static_cast<__nv_bfloat16*>(out), ld_out);
            break;
        default:
            block_quant_dequantize_kernel<W><<<grid, 256, 0, stream>>>(wt, ldw, rows, K, static_cast<float*>(out), ld_out);
            break;
    }
}

bool valid_rows(dtype w_t, int64_t K) {
    return detail::is_block_quant(w_t) && K % detail::block_quant_values(w_t) == 0;
}

}  // namespace

bool block_quant_gemm_type(dtype t) { return detail::is_block_quant(t); }

cudaError_t block_quant_gemv(dtype w_t, dtype act, const void* x, int64_t M, int64_t K, int64_t ldx, const void* w,
                             int64_t ldw_bytes, int64_t N, dtype y_t, void* y, int64_t ldy, cudaStream_t stream) {
    if (!valid_rows(w_t, K) || !detail::is_activation(act) || !detail::is_activation(y_t) ||
        M > block_quant_gemv_max_rows)
        return cudaErrorInvalidValue;
    if (M <= 0 || N <= 0) return cudaSuccess;
    switch (w_t) {
        case dtype::q4_0: gemv_for_x<dtype::q4_0>(act, x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream); break;
        case dtype::q4_k: gemv_for_x<dtype::q4_k>(act, x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream); break;
        case dtype::q5_k: gemv_for_x<dtype::q5_k>(act, x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream); break;
        default: gemv_for_x<dtype::q6_k>(act, x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream); break;
    }
    return detail::launched();
}

cudaError_t block_quant_dequantize(dtype w_t, const void* w, int64_t ldw_bytes, int64_t rows, int64_t K, dtype out_t,
                                   void* out, int64_t ld_out, cudaStream_t stream) {
    if (!valid_rows(w_t, K) || !detail::is_activation(out_t)) return cudaErrorInvalidValue;
    if (rows <= 0 || K <= 0) return cudaSuccess;
    switch (w_t) {
        case dtype::q4_0: dequantize_to<dtype::q4_0>(w, ldw_bytes, rows, K, out_t, out, ld_out, stream); break;
        case dtype::q4_k: dequantize_to<dtype::q4_k>(w, ldw_bytes, rows, K, out_t, out, ld_out, stream); break;
        case dtype::q5_k: dequantize_to<dtype::q5_k>(w, ldw_bytes, rows, K, out_t, out, ld_out, stream); break;
        default: dequantize_to<dtype::q6_k>(w, ldw_bytes, rows, K, out_t, out, ld_out, stream); break;
    }
    return detail::launched();
}

}  // namespace llmq::kernels::cuda

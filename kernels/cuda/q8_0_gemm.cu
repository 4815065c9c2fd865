// Q8_0 weights on the GPU: a GEMV-style kernel that reads the blocks directly (decode, up to
// 16 rows of x), and a dequantizer that turns rows of blocks into f32/f16/bf16 tiles for
// cuBLASLt (larger M).
//
// GEMV layout: one warp per output column n. Lanes 0-15 take values 2j, 2j+1 of block b,
// lanes 16-31 the same of block b+1, so one step of the warp covers 64 values and reads 68
// contiguous bytes of the weight row (two 2-byte scales broadcast to 16 lanes each, 32 2-byte
// value pairs). Every lane keeps one f32 accumulator per row of x; the 32 lanes' partial sums
// are added by shuffles at the end. x is read through the L1/L2 (a few KiB per row, shared by
// all warps).
#include "device_types.cuh"
#include "llmq/kernels/cuda.hpp"

namespace llmq::kernels::cuda {
namespace {

constexpr int gemv_warps = 8;

template <typename XT, int MAX_ROWS>
__global__ void __launch_bounds__(gemv_warps * 32)
    q8_0_gemv_kernel(const XT* __restrict__ x, int M, int64_t K, int64_t ldx, const uint8_t* __restrict__ w,
                     int64_t ldw, int64_t N, dtype y_t, void* y, int64_t ldy) {
    const int lane = threadIdx.x % 32;
    const int64_t n = int64_t(blockIdx.x) * gemv_warps + threadIdx.x / 32;
    if (n >= N) return;
    const uint8_t* row = w + n * ldw;
    const int64_t blocks = K / 32;
    const int pair = (lane % 16) * 2;
    float acc[MAX_ROWS];
#pragma unroll
    for (int m = 0; m < MAX_ROWS; ++m) acc[m] = 0.0f;
    for (int64_t b = lane / 16; b < blocks; b += 2) {
        const uint8_t* block = row + b * 34;
        const float d = __half2float(*reinterpret_cast<const __half*>(block));
        const uint16_t packed = *reinterpret_cast<const uint16_t*>(block + 2 + pair);
        const float w0 = d * float(static_cast<int8_t>(packed & 0xffu));
        const float w1 = d * float(static_cast<int8_t>(packed >> 8));
        const int64_t k = b * 32 + pair;
#pragma unroll
        for (int m = 0; m < MAX_ROWS; ++m)
            if (m < M) {
                const XT* xr = x + m * ldx + k;
                acc[m] = fmaf(w0, detail::to_float(xr[0]), fmaf(w1, detail::to_float(xr[1]), acc[m]));
            }
    }
#pragma unroll
    for (int m = 0; m < MAX_ROWS; ++m) {
        if (m >= M) break;
        const float total = detail::warp_sum(acc[m]);
        if (lane == 0) detail::store(y_t, y, m * ldy + n, total);
    }
}

template <typename XT>
cudaError_t launch_gemv(const void* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw, int64_t N,
                        dtype y_t, void* y, int64_t ldy, cudaStream_t stream) {
    const unsigned grid = unsigned((N + gemv_warps - 1) / gemv_warps);
    const auto* xt = static_cast<const XT*>(x);
    const auto* wt = static_cast<const uint8_t*>(w);
    const int rows = int(M);
    if (M <= 1)
        q8_0_gemv_kernel<XT, 1><<<grid, gemv_warps * 32, 0, stream>>>(xt, rows, K, ldx, wt, ldw, N, y_t, y, ldy);
    else if (M <= 4)
        q8_0_gemv_kernel<XT, 4><<<grid, gemv_warps * 32, 0, stream>>>(xt, rows, K, ldx, wt, ldw, N, y_t, y, ldy);
    else
        q8_0_gemv_kernel<XT, 16><<<grid, gemv_warps * 32, 0, stream>>>(xt, rows, K, ldx, wt, ldw, N, y_t, y, ldy);
    return detail::launched();
}

// One thread per pair of values: (row r, pair p) with p < K/2.
template <typename OT>
__global__ void q8_0_dequantize_kernel(const uint8_t* __restrict__ w, int64_t ldw, int64_t rows, int64_t K,
                                       OT* __restrict__ out, int64_t ld_out) {
    const int64_t pairs = K / 2;
    const int64_t total = rows * pairs;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / pairs, k = (e % pairs) * 2;
        const uint8_t* block = w + r * ldw + (k / 32) * 34;
        const float d = __half2float(*reinterpret_cast<const __half*>(block));
        const uint16_t packed = *reinterpret_cast<const uint16_t*>(block + 2 + k % 32);
        out[r * ld_out + k] = detail::from_float<OT>(d * float(static_cast<int8_t>(packed & 0xffu)));
        out[r * ld_out + k + 1] = detail::from_float<OT>(d * float(static_cast<int8_t>(packed >> 8)));
    }
}

}  // namespace

cudaError_t q8_0_gemv(dtype act, const void* x, int64_t M, int64_t K, int64_t ldx, const void* w, int64_t ldw_bytes,
                      int64_t N, dtype y_t, void* y, int64_t ldy, cudaStream_t stream) {
    if (!detail::is_activation(act) || !detail::is_activation(y_t) || M > q8_0_gemv_max_rows || K % 32 != 0 ||
        ldw_bytes % 2 != 0)
        return cudaErrorInvalidValue;
    if (M <= 0 || N <= 0) return cudaSuccess;
    switch (act) {
        case dtype::f16: return launch_gemv<__half>(x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream);
        case dtype::bf16: return launch_gemv<__nv_bfloat16>(x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream);
        default: return launch_gemv<float>(x, M, K, ldx, w, ldw_bytes, N, y_t, y, ldy, stream);
    }
}

cudaError_t q8_0_dequantize(const void* w, int64_t ldw_bytes, int64_t rows, int64_t K, dtype out_t, void* out,
                            int64_t ld_out, cudaStream_t stream) {
    if (!detail::is_activation(out_t) || K % 32 != 0 || ldw_bytes % 2 != 0) return cudaErrorInvalidValue;
    if (rows <= 0 || K <= 0) return cudaSuccess;
    const int64_t total = rows * (K / 2);
    const int64_t wanted = (total + 255) / 256;
    const unsigned grid = unsigned(wanted < 65535 * 16 ? wanted : 65535 * 16);
    const auto* wt = static_cast<const uint8_t*>(w);
    switch (out_t) {
        case dtype::f16:
            q8_0_dequantize_kernel<<<grid, 256, 0, stream>>>(wt, ldw_bytes, rows, K, static_cast<__half*>(out), ld_out);
            break;
        case dtype::bf16:
            q8_0_dequantize_kernel<<<grid, 256, 0, stream>>>(wt, ldw_bytes, rows, K, static_cast<__nv_bfloat16*>(out),
                                                             ld_out);
            break;
        default:
            q8_0_dequantize_kernel<<<grid, 256, 0, stream>>>(wt, ldw_bytes, rows, K, static_cast<float*>(out), ld_out);
            break;
    }
    return detail::launched();
}

}  // namespace llmq::kernels::cuda

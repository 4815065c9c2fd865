// Device-side helpers shared by the .cu files: element loads and stores by dtype (f32
// arithmetic inside, one rounding to nearest even on the way out) and block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels::cuda::detail {

// Element types as C++ types, for kernels templated on them.
template <dtype T> struct element;
template <> struct element<dtype::f32> { using type = float; };
template <> struct element<dtype::f16> { using type = __half; };
template <> struct element<dtype::bf16> { using type = __nv_bfloat16; };

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Loads and stores with the type chosen at run time; the switch is uniform across a warp,
// so it costs a branch, not divergence. For f32, f16 and bf16 only.
__device__ __forceinline__ float load(dtype t, const void* base, int64_t i) {
    switch (t) {
        case dtype::f16: return __half2float(static_cast<const __half*>(base)[i]);
        case dtype::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
        default: return static_cast<const float*>(base)[i];
    }
}
__device__ __forceinline__ void store(dtype t, void* base, int64_t i, float v) {
    switch (t) {
        case dtype::f16: static_cast<__half*>(base)[i] = __float2half_rn(v); break;
        case dtype::bf16: static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(v); break;
        default: static_cast<float*>(base)[i] = v; break;
    }
}

// Value i of a Q8_0 row (blocks of an fp16 scale then 32 int8; 2-byte aligned rows).
__device__ __forceinline__ float load_q8_0(const uint8_t* row, int64_t i) {
    const uint8_t* block = row + (i / 32) * 34;
    const float d = __half2float(*reinterpret_cast<const __half*>(block));
    return d * float(static_cast<int8_t>(block[2 + i % 32]));
}

__host__ __device__ constexpr bool is_activation(dtype t) {
    return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the sum.
// Uses 33 floats of shared memory that the caller provides; callable repeatedly.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < warps ? scratch[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) scratch[32] = s;
    }
    __syncthreads();
    const float total = scratch[32];
    __syncthreads();  // scratch may be reused by the next call
    return total;
}

inline cudaError_t launched() { return cudaGetLastError(); }

}  // namespace llmq::kernels::cuda::detail

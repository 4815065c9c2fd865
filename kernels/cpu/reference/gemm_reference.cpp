// Scalar reference GEMM: each weight row is widened to f32 once (in pieces of 256 values)
// and dotted with all M rows of x, so w is read once whatever M is. Sums run in f32, in
// order, four lanes wide (the same shape of rounding as the vector kernels, not the same
// order).
#include "float16_conversion.hpp"
#include "reference_kernels.hpp"

namespace llmq::kernels::reference {
namespace {

constexpr int64_t piece = 256;  // a multiple of the Q8_0 block

void widen(dtype wt, const uint8_t* row, int64_t k0, int64_t count, float* out) {
    switch (wt) {
        case dtype::q8_0:
            reference::row_to_f32(wt, row + k0 / q8_0_block_values * q8_0_block_bytes, out, count);
            return;
        case dtype::f16:
        case dtype::bf16:
            reference::row_to_f32(wt, row + k0 * 2, out, count);
            return;
        default:
            reference::row_to_f32(wt, row + k0 * 4, out, count);
            return;
    }
}

}  // namespace

void gemm(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
          int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    float row[piece];
    for (int64_t n = n_begin; n < n_end; ++n) {
        const auto* wrow = static_cast<const uint8_t*>(w) + n * ldw;
        for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = 0.0f;
        for (int64_t k0 = 0; k0 < K; k0 += piece) {
            const int64_t count = K - k0 < piece ? K - k0 : piece;
            widen(wt, wrow, k0, count, row);
            for (int64_t m = 0; m < M; ++m) {
                const float* xm = x + m * ldx + k0;
                float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                int64_t k = 0;
                for (; k + 4 <= count; k += 4)
                    for (int l = 0; l < 4; ++l) lanes[l] += xm[k + l] * row[k + l];
                for (; k < count; ++k) lanes[0] += xm[k] * row[k];
                y[m * ldy + n] += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
            }
        }
    }
}

void gemm_bf16_dot(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const void* w,
                   int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    // A product of two bf16 values is exact in f32, so widening both and using f32 FMAs is
    // the exact meaning of a bf16 dot product with f32 accumulation.
    for (int64_t n = n_begin; n < n_end; ++n) {
        const auto* wrow = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(w) +
                                                              n * ldw);
        for (int64_t m = 0; m < M; ++m) {
            const uint16_t* xm = x + m * ldx;
            float sum = 0.0f;
            for (int64_t k = 0; k < K; ++k) sum += scalar_float16::bf16_to_float(xm[k]) * scalar_float16::bf16_to_float(wrow[k]);
            y[m * ldy + n] = sum;
        }
    }
}

}  // namespace llmq::kernels::reference

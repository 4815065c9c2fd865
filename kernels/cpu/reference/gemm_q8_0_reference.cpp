// Scalar reference of the Q8_0 GEMM: x quantised per row and 32-value block exactly as the
// vector kernels do (d = max|x| / 127, q = round-to-nearest-even(x * (1 / d)), saturated to
// int8), each block pair's 32 products summed in int32, scaled by d_x * d_w and added in f32.
// See simd/quant_dot_simd.cpp.
#include <cmath>
#include <cstring>
#include <vector>

#include "float16_conversion.hpp"
#include "reference_kernels.hpp"

namespace llmq::kernels::reference {

void gemm_q8_0_int8(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w_, int64_t ldw, float* y,
                    int64_t ldy, int64_t n_begin, int64_t n_end) {
    const auto* w = static_cast<const uint8_t*>(w_);
    const int64_t blocks = K / q8_0_block_values;
    std::vector<int8_t> q(static_cast<std::size_t>(M * K));
    std::vector<float> d(static_cast<std::size_t>(M * blocks));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t b = 0; b < blocks; ++b) {
            const float* v = x + m * ldx + b * q8_0_block_values;
            float amax = 0.0f;
            for (int i = 0; i < q8_0_block_values; ++i) amax = std::fmax(amax, std::fabs(v[i]));
            const float dx = amax / 127.0f;
            const float id = dx != 0.0f ? 1.0f / dx : 0.0f;
            d[std::size_t(m * blocks + b)] = dx;
            for (int i = 0; i < q8_0_block_values; ++i) {
                const float r = std::nearbyint(v[i] * id);
                q[std::size_t(m * K + b * q8_0_block_values + i)] =
                    static_cast<int8_t>(r > 127.0f ? 127.0f : r < -128.0f ? -128.0f : r);
            }
        }
    for (int64_t n = n_begin; n < n_end; ++n) {
        const uint8_t* row = w + n * ldw;
        for (int64_t m = 0; m < M; ++m) {
            float sum = 0.0f;
            for (int64_t b = 0; b < blocks; ++b) {
                const uint8_t* block = row + b * q8_0_block_bytes;
                uint16_t h;
                std::memcpy(&h, block, 2);
                const auto* wq = reinterpret_cast<const int8_t*>(block + 2);
                const int8_t* xq = q.data() + m * K + b * q8_0_block_values;
                int32_t dot = 0;
                for (int i = 0; i < q8_0_block_values; ++i) dot += int32_t(xq[i]) * int32_t(wq[i]);
                sum += float(dot) * scalar_float16::half_to_float(h) * d[std::size_t(m * blocks + b)];
            }
            y[m * ldy + n] = sum;
        }
    }
}

}  // namespace llmq::kernels::reference

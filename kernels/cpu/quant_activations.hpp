// Activations quantized for the integer dot products of block-quantized weights: each run of
// 32 values of an x row gets d = max|x| / 127 and q = round(x * (1 / d)) (nearest even,
// clamped to +-127), as Q8_0 does but with d kept in f32; each group of 16 also keeps
// d * sum(q) for the types whose values carry a min. Every ISA produces the same q, d and
// sums. Private to kernels/.
#pragma once

#include <cstdint>
#include <cstdlib>

#include "llmq/kernels/quant_blocks.hpp"

namespace llmq::kernels::detail {

// The decode path's threshold (gemm_integer_max_rows in quant_blocks.hpp): GEMMs with at
// most this many rows of x use the integer dot products; larger ones dequantize weight tiles
// to f32 into the packed GEMM.
inline constexpr int64_t quant_integer_tile_rows = 3;  // the chunk path's row tile
constexpr int64_t quant_integer_max_rows(dtype t) { return gemm_integer_max_rows(t); }

// Internal linkage in every translation unit (and no std::vector): an ISA library must not
// define a symbol outside its namespace that the linker could merge with another's.
namespace {

// A growable 64-byte aligned buffer, freed with its owner (a thread_local in the kernels).
struct scratch_buffer {
    void* data = nullptr;
    std::size_t bytes = 0;
    ~scratch_buffer() { std::free(data); }
    // Room for `wanted` bytes; NULL when out of memory (the old contents are not kept).
    void* reserve(std::size_t wanted) {
        if (wanted > bytes) {
            std::free(data);
            bytes = (wanted + 63) / 64 * 64;
            data = std::aligned_alloc(64, bytes);
            if (data == nullptr) bytes = 0;
        }
        return data;
    }
};

// `rows` quantized rows of K values (K a multiple of 32) in one scratch buffer.
struct quantized_rows {
    int64_t K = 0;
    int8_t* q = nullptr;       // rows x K
    float* d = nullptr;        // rows x K / 32
    float* sum16 = nullptr;    // rows x K / 16: d of the run * sum of the group's q
    scratch_buffer storage;

    bool resize(int64_t rows, int64_t k) {
        K = k;
        const std::size_t floats = std::size_t(rows * (k / 32 + k / 16)) * sizeof(float);
        auto* base = static_cast<uint8_t*>(storage.reserve(floats + std::size_t(rows * k)));
        if (base == nullptr) return false;
        d = reinterpret_cast<float*>(base);
        sum16 = d + rows * (k / 32);
        q = reinterpret_cast<int8_t*>(base + floats);
        return true;
    }
    const int8_t* q_row(int64_t m) const { return q + m * K; }
    const float* d_row(int64_t m) const { return d + m * (K / 32); }
    const float* sum_row(int64_t m) const { return sum16 + m * (K / 16); }
};

}  // namespace
}  // namespace llmq::kernels::detail

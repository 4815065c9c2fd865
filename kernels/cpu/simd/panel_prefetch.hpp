// The weight-line prefetcher of the packed GEMM drivers (gemm_simd.cpp, gemm_panels_simd.cpp),
// for one ISA library: internal linkage, like simd_vector.hpp.
#pragma once

#include <cstdint>

#include "simd_vector.hpp"  // the intrinsics, and the ISA namespace check

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

// Prefetches the weight lines of the next panel into L2 a few at a time, spread over the row
// tiles that use the current panel, so the panel packer finds them there instead of waiting for short
// row streams to ramp up from memory.
struct panel_prefetch {
    const uint8_t* rows = nullptr;
    int64_t ldw = 0, begin = 0, end = 0, offset = 0;
    int count = 0, row = 0;

    void start(const uint8_t* first_row, int64_t stride, int nrows, int64_t byte_begin, int64_t byte_end) {
        rows = first_row;
        ldw = stride;
        count = nrows;
        begin = offset = byte_begin & ~int64_t(63);
        end = byte_end;
        row = 0;
    }
    void issue(int lines) {
        for (; lines > 0 && row < count; --lines) {
            _mm_prefetch(reinterpret_cast<const char*>(rows + row * ldw + offset), _MM_HINT_T1);
            offset += 64;
            if (offset >= end) {
                ++row;
                offset = begin;
            }
        }
    }
};

}  // namespace
}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

// Overflow-checked unsigned arithmetic for sizes and offsets read from files. Each returns
// false (leaving *out unspecified) when the exact result does not fit.
#pragma once

#include <cstdint>

namespace llmq::checked {

[[nodiscard]] inline bool add(uint64_t a, uint64_t b, uint64_t* out) {
    return !__builtin_add_overflow(a, b, out);
}
[[nodiscard]] inline bool mul(uint64_t a, uint64_t b, uint64_t* out) {
    return !__builtin_mul_overflow(a, b, out);
}
// Round `a` up to a multiple of `alignment` (a power of two).
[[nodiscard]] inline bool align_up(uint64_t a, uint64_t alignment, uint64_t* out) {
    uint64_t sum;
    if (!add(a, alignment - 1, &sum)) return false;
    *out = sum & ~(alignment - 1);
    return true;
}

}  // namespace llmq::checked

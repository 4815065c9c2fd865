// Scalar reference loops of the machine-limit probes (machine_limits.cpp): an FMA chain
// loop and a memory read loop.
#include "reference_kernels.hpp"

namespace llmq::kernels::reference {

double fma_loop(int64_t iterations) {
    // Eight independent multiply-add chains; the values stay bounded (|a| < 1).
    float a[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    const float b = 0.999f, c = 1e-4f;
    for (int64_t it = 0; it < iterations; ++it)
        for (float& v : a) v = v * b + c;
    volatile float sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    (void)sink;
    return double(iterations) * 8.0 * 2.0;
}

// Eight interleaved sequential streams (one cache line of each per round) summed in eight
// independent lanes: the access pattern of a GEMV tile, which keeps more misses in flight than
// a single stream.
uint64_t sum_words(const uint64_t* words, std::size_t count) {
    constexpr std::size_t streams = 8, line = 8;  // 8 words = one 64-byte line
    const std::size_t length = count / streams / line * line;
    uint64_t lanes[line] = {};
    for (std::size_t i = 0; i < length; i += line)
        for (std::size_t s = 0; s < streams; ++s)
            for (std::size_t l = 0; l < line; ++l) lanes[l] += words[s * length + i + l];
    for (std::size_t i = streams * length; i < count; ++i) lanes[0] += words[i];
    uint64_t total = 0;
    for (uint64_t lane : lanes) total += lane;
    return total;
}

}  // namespace llmq::kernels::reference

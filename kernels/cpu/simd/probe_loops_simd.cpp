// The machine-limit probes' loops for one ISA: FMA chains in registers, and a read stream
// with the widest loads.
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {

double fma_loop_entry(int64_t iterations) {
    // Twelve independent chains: more than FMA latency x FMA ports on current x86 cores.
    constexpr int chains = 12;
    vf a[chains];
    for (int c = 0; c < chains; ++c) a[c] = vset1(0.01f * float(c + 1));
    const vf b = vset1(0.999f), add = vset1(1e-4f);
    for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (int c = 0; c < chains; ++c) a[c] = vfma(a[c], b, add);
    }
    vf total = vzero();
    for (int c = 0; c < chains; ++c) total = vadd(total, a[c]);
    volatile float sink = vhsum(total);
    (void)sink;
    return double(iterations) * chains * W * 2.0;
}

uint64_t sum_words_entry(const uint64_t* words, std::size_t count) {
    // Eight interleaved streams, one 64-byte line of each per round, as the scalar loop.
    constexpr std::size_t streams = 8, line = 8;
    const std::size_t length = count / streams / line * line;
#if defined(__AVX512F__)
    __m512i sums[streams];
    for (auto& v : sums) v = _mm512_setzero_si512();
    for (std::size_t i = 0; i < length; i += line)
        for (std::size_t s = 0; s < streams; ++s)
            sums[s] = _mm512_add_epi64(sums[s], _mm512_loadu_si512(words + s * length + i));
    __m512i total = sums[0];
    for (std::size_t s = 1; s < streams; ++s) total = _mm512_add_epi64(total, sums[s]);
    uint64_t result = uint64_t(_mm512_reduce_add_epi64(total));
#else
    __m256i sums[streams];
    for (auto& v : sums) v = _mm256_setzero_si256();
    for (std::size_t i = 0; i < length; i += line)
        for (std::size_t s = 0; s < streams; ++s) {
            const uint64_t* p = words + s * length + i;
            sums[s] = _mm256_add_epi64(sums[s], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
            sums[s] = _mm256_add_epi64(sums[s], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4)));
        }
    __m256i total = sums[0];
    for (std::size_t s = 1; s < streams; ++s) total = _mm256_add_epi64(total, sums[s]);
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
    uint64_t result = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
    for (std::size_t i = streams * length; i < count; ++i) result += words[i];
    return result;
}

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

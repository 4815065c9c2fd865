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

#if defined(__AVX512F__)
namespace {
constexpr int dot_chains = 12;  // as fma_loop_entry: more than latency x ports

// a[c] = step(a[c]) for every chain, `iterations` times, then the chains summed by `add` into
// a volatile sink (so that none of the work can be left out).
template <class V, class Step, class Add>
inline void run_chains(V (&a)[dot_chains], int64_t iterations, Step step, Add add) {
    for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (int c = 0; c < dot_chains; ++c) a[c] = step(a[c]);
    }
    V total = a[0];
    for (int c = 1; c < dot_chains; ++c) total = add(total, a[c]);
    volatile V sink = total;
    (void)sink;
}
}  // namespace
#endif

#if defined(__AVX512BF16__)
double bf16_dot_loop_entry(int64_t iterations) {
    // Chains of vdpbf16ps: 16 lanes x 2 products, 4 flops per lane.
    __m512 a[dot_chains];
    for (int c = 0; c < dot_chains; ++c) a[c] = _mm512_set1_ps(0.01f * float(c + 1));
    const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f);  // (0.996, 0.996)
    const __m512bh s = (__m512bh)_mm512_set1_epi32(0x38d138d1);  // (1e-4, 1e-4)
    run_chains(a, iterations, [&](__m512 v) { return _mm512_dpbf16_ps(v, b, s); }, _mm512_add_ps);
    return double(iterations) * dot_chains * 16 * 4.0;
}
#endif

#if defined(__AVX512VNNI__)
double int8_dot_loop_entry(int64_t iterations) {
    // Chains of vpdpbusd: 16 lanes x 4 products, 8 ops per lane; the sums wrap harmlessly.
    __m512i a[dot_chains];
    for (int c = 0; c < dot_chains; ++c) a[c] = _mm512_set1_epi32(c);
    const __m512i u = _mm512_set1_epi32(0x01020304), s = _mm512_set1_epi32(0x01fe02fd);
    run_chains(a, iterations, [&](__m512i v) { return _mm512_dpbusd_epi32(v, u, s); },
               [](__m512i x, __m512i y) { return _mm512_add_epi32(x, y); });
    return double(iterations) * dot_chains * 16 * 8.0;
}
#endif

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

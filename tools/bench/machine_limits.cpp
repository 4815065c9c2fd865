#include "machine_limits.hpp"

#include "llmq/kernels/gemm_units.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace llmq::bench {

MachineLimits MachineLimits::measure(int threads, int repeats) {
    MachineLimits m;
    m.threads = std::max(threads, 1);
    m.isa = kernels::best_isa();
#if defined(_SC_LEVEL3_CACHE_SIZE)
    if (const long llc = ::sysconf(_SC_LEVEL3_CACHE_SIZE); llc > 0) m.last_level_cache_bytes = static_cast<uint64_t>(llc);
#endif
    for (int r = 0; r < std::max(repeats, 1); ++r) {
        m.bandwidth_gbs = std::max(m.bandwidth_gbs, kernels::measure_memory_bandwidth_gbs(m.threads));
        // The prefill GEMM shape of a Llama layer: a block of prompt rows times a weight
        // matrix of model width (the probe's default, M 256 x N 2048 x K 2048).
        m.gemm_gflops = std::max(m.gemm_gflops, kernels::measure_gemm_gflops(m.isa, m.threads));
        m.fma_peak_gflops = std::max(m.fma_peak_gflops, kernels::measure_fma_peak_gflops(m.isa, m.threads));
        m.bf16_dot_peak_gflops =
            std::max(m.bf16_dot_peak_gflops, kernels::measure_bf16_dot_peak_gflops(m.isa, m.threads));
        m.int8_dot_peak_gops = std::max(m.int8_dot_peak_gops, kernels::measure_int8_dot_peak_gops(m.isa, m.threads));
    }
    return m;
}

void MachineLimits::keep_best(const MachineLimits& other) {
    bandwidth_gbs = std::max(bandwidth_gbs, other.bandwidth_gbs);
    gemm_gflops = std::max(gemm_gflops, other.gemm_gflops);
    fma_peak_gflops = std::max(fma_peak_gflops, other.fma_peak_gflops);
    bf16_dot_peak_gflops = std::max(bf16_dot_peak_gflops, other.bf16_dot_peak_gflops);
    int8_dot_peak_gops = std::max(int8_dot_peak_gops, other.int8_dot_peak_gops);
}

std::string MachineLimits::to_text() const {
    char line[256];
    std::snprintf(line, sizeof line,
                  "memory bandwidth %.2f GB/s, f32 GEMM %.1f GFLOP/s, FMA peak %.1f GFLOP/s, "
                  "vdpbf16ps peak %.1f GFLOP/s, vpdpbusd peak %.1f GOP/s "
                  "(%d thread%s, %s; last-level cache %.0f MiB)",
                  bandwidth_gbs, gemm_gflops, fma_peak_gflops, bf16_dot_peak_gflops, int8_dot_peak_gops, threads,
                  threads == 1 ? "" : "s",
                  kernels::isa_name(isa), double(last_level_cache_bytes) / (1024.0 * 1024.0));
    return line;
}

}  // namespace llmq::bench

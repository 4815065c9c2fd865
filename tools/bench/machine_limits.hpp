// The machine's physical limits, measured in the same run as the figures printed beside them
// (other work on a shared machine moves both alike).
//
// Threads: measure() starts its own threads (through the kernels' probes) and takes a few
// seconds; call it while nothing else of the benchmark runs.
#pragma once

#include <cstdint>
#include <string>

#include "llmq/kernels/cpu.hpp"

namespace llmq::bench {

struct MachineLimits {
    int threads = 1;
    kernels::isa isa = kernels::isa::scalar;
    double bandwidth_gbs = 0;   // main-memory read bandwidth, GB/s (1e9 B/s)
    double gemm_gflops = 0;     // the kernels' f32 GEMM on a compute-bound shape, GFLOP/s
    double fma_peak_gflops = 0; // FMA units with no memory traffic, GFLOP/s
    double bf16_dot_peak_gflops = 0;  // vdpbf16ps, GFLOP/s (0: not on this ISA)
    double int8_dot_peak_gops = 0;    // vpdpbusd, GOP/s (0: not on this ISA)
    uint64_t last_level_cache_bytes = 0;  // as the OS reports it; 0 when unknown

    // Measures each limit `repeats` times with `threads` threads and keeps the best.
    static MachineLimits measure(int threads, int repeats);
    // Keeps the better of each figure (limits measured before and after a run: on a shared
    // machine the better window is the closer one to what the hardware can do).
    void keep_best(const MachineLimits& other);

    // "memory bandwidth 11.3 GB/s, f32 GEMM 95.1 GFLOP/s, FMA peak 140.2 GFLOP/s, ... (2 threads, avx512)"
    std::string to_text() const;
};

}  // namespace llmq::bench

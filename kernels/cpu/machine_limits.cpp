// Probes of the machine's limits for benchmarks: memory read bandwidth, FMA peak, and the
// f32 GEMM rate of this library. Each runs its work on `threads` std::threads that meet at a
// barrier before and after every repetition; thread 0 times the span between the barriers,
// and the best repetition is reported. Repetitions are short (tens of milliseconds) and
// many, so that on a shared machine the best one is a window where the threads ran alone.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "kernel_table.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/gemm_units.hpp"

namespace llmq::kernels {
namespace {

using clock_type = std::chrono::steady_clock;

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Runs prepare(t) once on every thread, then `reps` timed rounds of work(t, rep); returns the
// shortest round in seconds, timed by `clock`.
double best_round(int threads, int reps, probe_clock clock, const std::function<void(int)>& prepare,
                  const std::function<void(int, int)>& work) {
    threads = std::max(threads, 1);
    std::barrier sync(threads);
    std::vector<double> wall(static_cast<std::size_t>(reps), 0.0);
    std::vector<double> cpu(static_cast<std::size_t>(reps) * static_cast<std::size_t>(threads), 0.0);
    auto body = [&](int t) {
        prepare(t);
        for (int rep = 0; rep < reps; ++rep) {
            sync.arrive_and_wait();
            const auto start = clock_type::now();
            const double cpu_start = thread_cpu_seconds();
            work(t, rep);
            cpu[std::size_t(rep) * std::size_t(threads) + std::size_t(t)] = thread_cpu_seconds() - cpu_start;
            sync.arrive_and_wait();
            if (t == 0) wall[rep] = std::chrono::duration<double>(clock_type::now() - start).count();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (auto& thread : pool) thread.join();
    double best = 1e300;
    for (int rep = 0; rep < reps; ++rep) {
        double seconds = wall[rep];
        if (clock == probe_clock::thread_cpu) {
            seconds = 0.0;
            for (int t = 0; t < threads; ++t)
                seconds = std::max(seconds, cpu[std::size_t(rep) * std::size_t(threads) + std::size_t(t)]);
        }
        best = std::min(best, seconds);
    }
    return std::max(best, 1e-9);
}

std::size_t last_level_cache_bytes() {
    long bytes = -1;
#if defined(_SC_LEVEL3_CACHE_SIZE)
    bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return bytes > 0 ? static_cast<std::size_t>(bytes) : std::size_t(32) << 20;
}

}  // namespace

double measure_memory_bandwidth_gbs(int threads, probe_clock clock) {
    threads = std::max(threads, 1);
    // At least 1 GiB and twice the last-level cache: a sequential scan of a buffer larger than
    // an LRU-like cache misses on every line.
    const std::size_t bytes = std::max(std::size_t(1) << 30, 2 * last_level_cache_bytes());
    const std::size_t words = bytes / sizeof(uint64_t);
    auto* buffer = static_cast<uint64_t*>(std::aligned_alloc(4096, words * sizeof(uint64_t)));
    if (buffer == nullptr) return 0.0;
    const std::size_t per_thread = words / static_cast<std::size_t>(threads);
    std::vector<uint64_t> sinks(static_cast<std::size_t>(threads), 0);
    // The widest loads this CPU has: the probe must not be limited by the core.
    const auto read = detail::table_for(best_isa()).sum_words;
    const double seconds = best_round(
        threads, 8, clock,
        [&](int t) {  // first touch by the thread that reads the part
            uint64_t* part = buffer + per_thread * static_cast<std::size_t>(t);
            for (std::size_t i = 0; i < per_thread; ++i) part[i] = i ^ static_cast<uint64_t>(t);
        },
        [&](int t, int) {
            sinks[t] += read(buffer + per_thread * static_cast<std::size_t>(t), per_thread);
        });
    volatile uint64_t sink = sinks[0];
    (void)sink;
    std::free(buffer);
    return double(per_thread * threads * sizeof(uint64_t)) / seconds / 1e9;
}

namespace {

// The peak of one register-only loop (fma_loop and its kin): calibrated to about 20 ms per
// round on one thread, then the best of 12 rounds on `threads` threads.
double loop_peak(double (*loop)(int64_t), int threads, probe_clock clock) {
    int64_t iterations = 1 << 16;
    for (;;) {
        const auto start = clock_type::now();
        loop(iterations);
        const double s = std::chrono::duration<double>(clock_type::now() - start).count();
        if (s > 0.05 || iterations > (int64_t(1) << 40)) {
            iterations = static_cast<int64_t>(double(iterations) * 0.02 / std::max(s, 1e-6));
            break;
        }
        iterations *= 4;
    }
    std::vector<double> flops(static_cast<std::size_t>(std::max(threads, 1)), 0.0);
    const double seconds =
        best_round(threads, 12, clock, [](int) {}, [&](int t, int) { flops[t] = loop(iterations); });
    double total = 0.0;
    for (double f : flops) total += f;
    return total / seconds / 1e9;
}

}  // namespace

double measure_fma_peak_gflops(isa which, int threads, probe_clock clock) {
    return loop_peak(detail::table_for(which).fma_loop, threads, clock);
}

double measure_bf16_dot_peak_gflops(isa which, int threads, probe_clock clock) {
    const auto loop = detail::table_for(which).bf16_dot_loop;
    return loop != nullptr ? loop_peak(loop, threads, clock) : 0.0;
}

double measure_int8_dot_peak_gops(isa which, int threads, probe_clock clock) {
    const auto loop = detail::table_for(which).int8_dot_loop;
    return loop != nullptr ? loop_peak(loop, threads, clock) : 0.0;
}

double measure_gemm_gflops(isa which, int threads, int64_t M, int64_t N, int64_t K, probe_clock clock) {
    threads = std::max(threads, 1);
    std::vector<float> x(static_cast<std::size_t>(M * K)), w(static_cast<std::size_t>(N * K)),
        y(static_cast<std::size_t>(M * N));
    uint32_t state = 12345;
    auto next = [&state] {
        state = state * 1664525u + 1013904223u;
        return float(int32_t(state >> 8) - (1 << 23)) / float(1 << 23);
    };
    for (float& v : x) v = next();
    for (float& v : w) v = next();
    const int64_t grain = 16;
    const int64_t columns = (N + threads - 1) / threads;
    const int64_t split = (columns + grain - 1) / grain * grain;
    const double seconds = best_round(
        threads, 10, clock, [](int) {},
        [&](int t, int) {
            const int64_t begin = std::min(N, split * t), end = std::min(N, split * (t + 1));
            gemm(which, x.data(), M, K, K, w.data(), dtype::f32, K * 4, y.data(), N, begin, end);
        });
    return 2.0 * double(M) * double(N) * double(K) / seconds / 1e9;
}

}  // namespace llmq::kernels

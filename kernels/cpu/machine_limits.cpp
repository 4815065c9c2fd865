// Probes of the machine's limits for benchmarks: memory read bandwidth, FMA peak, and the
// f32 GEMM rate of this library. Each runs its work on `threads` std::threads that meet at a
// barrier before and after every repetition; thread 0 times the span between the barriers,
// and the best repetition is reported. Repetitions are short (tens of milliseconds) and
// many, so that on a shared machine the best one is a window where the threads ran alone.
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

namespace llmq::kernels {
namespace {

using clock_type = std::chrono::steady_clock;

// Runs prepare(t) once on every thread, then `reps` timed rounds of work(t, rep); returns the
// shortest round in seconds.
double best_round(int threads, int reps, const std::function<void(int)>& prepare,
                  const std::function<void(int, int)>& work) {
    threads = std::max(threads, 1);
    std::barrier sync(threads);
    std::vector<double> seconds(static_cast<std::size_t>(reps), 0.0);
    auto body = [&](int t) {
        prepare(t);
        for (int rep = 0; rep < reps; ++rep) {
            sync.arrive_and_wait();
            const auto start = clock_type::now();
            work(t, rep);
            sync.arrive_and_wait();
            if (t == 0)
                seconds[rep] = std::chrono::duration<double>(clock_type::now() - start).count();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (auto& thread : pool) thread.join();
    return *std::min_element(seconds.begin(), seconds.end());
}

std::size_t last_level_cache_bytes() {
    long bytes = -1;
#if defined(_SC_LEVEL3_CACHE_SIZE)
    bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return bytes > 0 ? static_cast<std::size_t>(bytes) : std::size_t(32) << 20;
}

// Sums 64-bit words read as eight interleaved sequential streams (one cache line of each per
// round), with eight independent lanes the compiler widens to vectors: the access pattern of
// a GEMV tile (several weight rows at once), which keeps more misses in flight than a single
// stream, so the loop is limited by memory, not by the core.
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

}  // namespace

double measure_memory_bandwidth_gbs(int threads) {
    threads = std::max(threads, 1);
    // At least 1 GiB and twice the last-level cache: a sequential scan of a buffer larger than
    // an LRU-like cache misses on every line.
    const std::size_t bytes = std::max(std::size_t(1) << 30, 2 * last_level_cache_bytes());
    const std::size_t words = bytes / sizeof(uint64_t);
    auto* buffer = static_cast<uint64_t*>(std::aligned_alloc(4096, words * sizeof(uint64_t)));
    if (buffer == nullptr) return 0.0;
    const std::size_t per_thread = words / static_cast<std::size_t>(threads);
    std::vector<uint64_t> sinks(static_cast<std::size_t>(threads), 0);
    const double seconds = best_round(
        threads, 8,
        [&](int t) {  // first touch by the thread that reads the part
            uint64_t* part = buffer + per_thread * static_cast<std::size_t>(t);
            for (std::size_t i = 0; i < per_thread; ++i) part[i] = i ^ static_cast<uint64_t>(t);
        },
        [&](int t, int) {
            sinks[t] += sum_words(buffer + per_thread * static_cast<std::size_t>(t), per_thread);
        });
    volatile uint64_t sink = sinks[0];
    (void)sink;
    std::free(buffer);
    return double(per_thread * threads * sizeof(uint64_t)) / seconds / 1e9;
}

double measure_fma_peak_gflops(isa which, int threads) {
    const detail::kernel_table& table = detail::table_for(which);
    // Calibrate to about 20 ms per round on one thread.
    int64_t iterations = 1 << 16;
    for (;;) {
        const auto start = clock_type::now();
        table.fma_loop(iterations);
        const double s = std::chrono::duration<double>(clock_type::now() - start).count();
        if (s > 0.05 || iterations > (int64_t(1) << 40)) {
            iterations = static_cast<int64_t>(double(iterations) * 0.02 / std::max(s, 1e-6));
            break;
        }
        iterations *= 4;
    }
    std::vector<double> flops(static_cast<std::size_t>(std::max(threads, 1)), 0.0);
    const double seconds =
        best_round(threads, 12, [](int) {}, [&](int t, int) { flops[t] = table.fma_loop(iterations); });
    double total = 0.0;
    for (double f : flops) total += f;
    return total / seconds / 1e9;
}

double measure_gemm_gflops(isa which, int threads, int64_t M, int64_t N, int64_t K) {
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
        threads, 10, [](int) {},
        [&](int t, int) {
            const int64_t begin = std::min(N, split * t), end = std::min(N, split * (t + 1));
            gemm(which, x.data(), M, K, K, w.data(), dtype::f32, K * 4, y.data(), N, begin, end);
        });
    return 2.0 * double(M) * double(N) * double(K) / seconds / 1e9;
}

}  // namespace llmq::kernels

// Kernel benchmark: GEMV (decode) and GEMM (prefill) on TinyLlama-like shapes for every weight
// dtype and every ISA this CPU runs, each figure printed beside the machine's limit measured
// in the same run:
//   GEMV: weight bytes streamed per second vs the memory read bandwidth (ratio);
//   GEMM: GFLOP/s vs the FMA peak and vs this library's own f32 GEMM on a compute-bound shape.
// Work is split over N between `--threads` threads, each taking a contiguous half (as the
// plugins do through the host's parallel_for).
//
// A decode step reads every weight matrix once and comes back to it only after all the other
// layers, so a GEMV is timed over enough copies of its matrix to exceed the last-level cache
// (as many layers would); the measured rate is the rate from memory, not from cache.
//
//   bench_kernels [--threads N] [--isa NAME] [--dtype NAME] [--k K] [--quick] [--clock wall|cpu] [--m-sweep] [--prefill]
//
// --dtype: only that weight type (any of the table's, q4_0 or iq4_nl too); --k: rows of K values
// instead of 2048 (a multiple of the type's block; 896 is Qwen2.5-0.5B's hidden size).
//
// --m-sweep: instead, the GEMM of M = 1..512 rows (batched decode to prefill) on the TinyLlama
// 2048 x 2048 projection for f16, Q8_0, Q4_K and Q6_K weights (or --dtype, any weight type), on the best ISA (or --isa), weights from
// memory; per M the time, the bound measured in this run, max(weight bytes / read bandwidth,
// 2 M N K / peak of the unit in use), their ratio (bound / time: 1 is the limit), and the
// kernel path used.
//
// --prefill: instead, the prefill GEMMs (M = 128 and 512) for f16, bf16 (also through
// gemm_bf16_dot) and Q8_0 against the peak of the unit each uses (FMA, vdpbf16ps, vpdpbusd),
// probed in this run (--quick: the 2048 x 2048 projection only; --dtype f16|bf16|bf16-dot|q8_0).
//
// --clock cpu times every figure and every limit by the threads' own CPU time instead of the
// wall clock: on a machine shared with other work it leaves out the time the threads were
// descheduled (the figures of a dedicated machine are the wall-clock ones).
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/gemm_units.hpp"
#include "llmq/kernels/q8_0_int8.hpp"

using namespace llmq::kernels;

namespace {

using clock_type = std::chrono::steady_clock;

probe_clock bench_clock = probe_clock::wall;

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// `threads` threads run work(t) between two barriers `reps` times; returns the best seconds
// by bench_clock (wall, or the slowest thread's own CPU time).
double best_of(int threads, int reps, const std::function<void(int)>& work) {
    std::barrier sync(threads);
    std::vector<double> seconds(static_cast<std::size_t>(reps), 0.0);
    std::vector<double> cpu(static_cast<std::size_t>(reps * threads), 0.0);
    auto body = [&](int t) {
        for (int rep = 0; rep < reps; ++rep) {
            sync.arrive_and_wait();
            const auto start = clock_type::now();
            const double cpu_start = thread_cpu_seconds();
            work(t);
            cpu[std::size_t(rep * threads + t)] = thread_cpu_seconds() - cpu_start;
            sync.arrive_and_wait();
            if (t == 0) seconds[rep] = std::chrono::duration<double>(clock_type::now() - start).count();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (auto& th : pool) th.join();
    if (bench_clock == probe_clock::thread_cpu)
        for (int rep = 0; rep < reps; ++rep)
            seconds[rep] = *std::max_element(cpu.begin() + rep * threads, cpu.begin() + (rep + 1) * threads);
    return *std::min_element(seconds.begin(), seconds.end());
}

struct split {
    int64_t begin, end;
};
split part_of(int64_t N, int threads, int t) {
    const int64_t grain = 16;
    const int64_t per = ((N + threads - 1) / threads + grain - 1) / grain * grain;
    return {std::min(N, per * t), std::min(N, per * (t + 1))};
}

std::vector<uint8_t> make_weights(dtype t, int64_t N, int64_t K) {
    std::vector<uint8_t> bytes(row_bytes(t, K) * std::size_t(N));
    std::vector<float> row(static_cast<std::size_t>(K));
    uint32_t state = 7;
    for (int64_t n = 0; n < N; ++n) {
        for (float& v : row) {
            state = state * 1664525u + 1013904223u;
            v = float(int32_t(state >> 8) - (1 << 23)) / float(1 << 24);
        }
        row_from_f32(t, row.data(), &bytes[row_bytes(t, K) * std::size_t(n)], K);
    }
    return bytes;
}

// The M sweep (see the top): one line per dtype and M.
void m_sweep(int threads, isa which, double bandwidth, const std::string& only_dtype) {
    const int64_t N = 2048, K = 2048;
    const double fma_peak = measure_fma_peak_gflops(which, threads, bench_clock);
    const double int8_peak = measure_int8_dot_peak_gops(which, threads, bench_clock);
    std::printf("\n== GEMM M sweep on %s: N=%lld K=%lld, FMA peak %.1f GFLOP/s, vpdpbusd peak %.1f GOP/s, read "
                "bandwidth %.1f GB/s\n",
                isa_name(which), (long long)N, (long long)K, fma_peak, int8_peak, bandwidth);
    std::printf("%-9s %4s %10s %10s %6s %9s  %s\n", "weights", "M", "ms", "bound ms", "ratio", "us/row", "path");
    const int64_t Ms[] = {1, 2, 3, 4, 5, 6, 8, 12, 16, 17, 24, 32, 33, 48, 64, 65, 96, 128, 256, 512};
    // (type, int8): int8 is gemm_q8_0_int8 at every M instead of gemm. --dtype picks one of
    // these, or sweeps any other weight type through gemm.
    std::vector<std::pair<dtype, bool>> variants = {
        {dtype::f16, false}, {dtype::q8_0, false}, {dtype::q8_0, true}, {dtype::q4_k, false}, {dtype::q6_k, false}};
    if (!only_dtype.empty() &&
        std::none_of(variants.begin(), variants.end(), [&](const auto& v) { return only_dtype == dtype_name(v.first); }))
        for (const dtype_info& d : dtype_table)
            if (d.weight && only_dtype == d.name) variants = {{d.id, false}};
    for (const auto& [wt, int8] : variants) {
        if (!only_dtype.empty() && only_dtype != dtype_name(wt)) continue;
        const std::size_t matrix_bytes = row_bytes(wt, K) * std::size_t(N);
        // Enough copies to leave the caches for the memory-bound end; two for the compute end.
        const std::size_t from_memory = std::max<std::size_t>(1, ((std::size_t(256) << 20) + matrix_bytes - 1) / matrix_bytes);
        std::vector<std::vector<uint8_t>> w(from_memory);
        w[0] = make_weights(wt, N, K);
        for (std::size_t c = 1; c < w.size(); ++c) w[c] = w[0];
        for (int64_t M : Ms) {
            const std::size_t copies = M <= 64 ? from_memory : 2;
            std::vector<float> x(static_cast<std::size_t>(M * K)), y(static_cast<std::size_t>(M * N));
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 17) - 8) / 8.0f;
            std::barrier layer(threads);
            const double s = best_of(threads, 3, [&](int t) {
                const split p = part_of(N, threads, t);
                for (std::size_t c = 0; c < copies; ++c) {
                    if (int8)
                        gemm_q8_0_int8(which, x.data(), M, K, K, w[c].data(), int64_t(row_bytes(wt, K)), y.data(),
                                       N, p.begin, p.end);
                    else
                        gemm(which, x.data(), M, K, K, w[c].data(), wt, int64_t(row_bytes(wt, K)), y.data(), N,
                             p.begin, p.end);
                    layer.arrive_and_wait();
                }
            }) / double(copies);
            // The compute peak of the unit the path runs on: vpdpbusd where x is quantized and the
            // ISA has VNNI, else FMA.
            const bool vnni = (int8 || gemm_quantizes_x(which, wt, M, K)) && int8_peak > 0.0;
            const double bound = std::max(double(matrix_bytes) / (bandwidth * 1e9),
                                          2.0 * double(M) * double(N) * double(K) / ((vnni ? int8_peak : fma_peak) * 1e9));
            std::printf("%-9s %4lld %10.3f %10.3f %6.2f %9.1f  %s\n", int8 ? "q8_0-int8" : dtype_name(wt),
                        (long long)M, s * 1e3, bound * 1e3, bound / s, s * 1e6 / double(M),
                        int8 ? gemm_q8_0_int8_path(which) : gemm_path(which, wt, M));
        }
    }
    std::printf("ratio: bound / time (1.00 = at the limit); q8_0: gemm (int8 dots up to gemm_integer_max_rows, then "
                "the prefill panels: vpdpbusd where the ISA has VNNI, else weights widened to f32); q8_0-int8: "
                "gemm_q8_0_int8 at every M; the compute bound is the peak of the unit in use (vpdpbusd for int8 "
                "dots with VNNI, else FMA)\n");
}

// The prefill GEMMs (--prefill): M = 128 and 512 prompt rows on TinyLlama's 2048 x 2048 and
// 5632 x 2048 projections, for f16, bf16 (exact, and with vdpbf16ps on x rounded to bf16) and
// Q8_0 weights, each against the peak of the unit its kernel uses, probed in this run: the f32
// FMA peak, the vdpbf16ps peak or the vpdpbusd peak (ops counted as 2 per multiply-add).
void prefill(int threads, isa which, bool quick, const std::string& only_dtype) {
    const double fma = measure_fma_peak_gflops(which, threads, bench_clock);
    const double bf16_dot = measure_bf16_dot_peak_gflops(which, threads, bench_clock);
    const double int8_dot = measure_int8_dot_peak_gops(which, threads, bench_clock);
    std::printf("\n== prefill GEMM on %s, %d thread(s): unit peaks FMA %.1f GFLOP/s, vdpbf16ps %.1f GFLOP/s, "
                "vpdpbusd %.1f GOP/s (0 = not on this ISA)\n",
                isa_name(which), threads, fma, bf16_dot, int8_dot);
    std::printf("%-9s %4s %5s %5s %9s %9s %9s %6s  %s\n", "weights", "M", "N", "K", "ms", "GFLOP/s", "bound", "ratio",
                "unit, path");
    const int64_t K = 2048;
    for (int64_t N : {int64_t(2048), int64_t(5632)})
        for (int variant = 0; variant < 4; ++variant) {
            const dtype wt = variant == 0 ? dtype::f16 : variant == 3 ? dtype::q8_0 : dtype::bf16;
            const bool dot = variant == 2;
            if (dot && bf16_dot == 0.0) continue;
            if ((quick && N != 2048) || (!only_dtype.empty() && only_dtype != (dot ? "bf16-dot" : dtype_name(wt))))
                continue;
            const std::vector<uint8_t> w = make_weights(wt, N, K);
            const int64_t ldw = int64_t(row_bytes(wt, K));
            for (int64_t M : {int64_t(128), int64_t(512)}) {
                std::vector<float> x(static_cast<std::size_t>(M * K)), y(static_cast<std::size_t>(M * N));
                for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 17) - 8) / 8.0f;
                std::vector<uint16_t> xb(dot ? x.size() : 0);
                if (dot) row_from_f32(dtype::bf16, x.data(), xb.data(), int64_t(x.size()));
                const double s = best_of(threads, 5, [&](int t) {
                    const split p = part_of(N, threads, t);
                    if (dot)
                        gemm_bf16_dot(which, xb.data(), M, K, K, w.data(), ldw, y.data(), N, p.begin, p.end);
                    else
                        gemm(which, x.data(), M, K, K, w.data(), wt, ldw, y.data(), N, p.begin, p.end);
                });
                const bool int8 = gemm_quantizes_x(which, wt, M, K);
                const double peak = dot ? bf16_dot : int8 ? int8_dot : fma;
                const double gflops = 2.0 * double(M) * double(N) * double(K) / s / 1e9;
                std::printf("%-9s %4lld %5lld %5lld %9.3f %9.1f %9.1f %6.2f  %s, %s\n", dot ? "bf16-dot" : dtype_name(wt),
                            (long long)M, (long long)N, (long long)K, s * 1e3, gflops, peak, gflops / peak,
                            dot ? "vdpbf16ps" : int8 ? "vpdpbusd" : "FMA",
                            dot ? "outer-product panels, x rounded to bf16" : gemm_path(which, wt, M));
            }
        }
    std::printf("ratio: GFLOP/s / the peak of the unit in use, both measured in this run\n");
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2;
    std::string only_isa, only_dtype;
    bool quick = false, sweep = false, prefill_only = false;
    long long k_values = 2048;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--isa") && i + 1 < argc) only_isa = argv[++i];
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--m-sweep")) sweep = true;
        else if (!std::strcmp(argv[i], "--prefill")) prefill_only = true;
        else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) only_dtype = argv[++i];
        else if (!std::strcmp(argv[i], "--k") && i + 1 < argc) k_values = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--clock") && i + 1 < argc && !std::strcmp(argv[i + 1], "cpu")) {
            bench_clock = probe_clock::thread_cpu;
            ++i;
        } else if (!std::strcmp(argv[i], "--clock") && i + 1 < argc && !std::strcmp(argv[i + 1], "wall")) {
            ++i;
        }
        else {
            std::fprintf(stderr, "usage: %s [--threads N] [--isa NAME] [--dtype NAME] [--k K] [--quick] [--clock wall|cpu] [--m-sweep] [--prefill]\n", argv[0]);
            return 2;
        }
    }
    threads = std::max(threads, 1);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear as they are measured
    const int64_t K = k_values;
    const std::vector<int64_t> Ns = quick ? std::vector<int64_t>{2048} : std::vector<int64_t>{2048, 5632, 32000};
    const std::vector<int64_t> Ms = quick ? std::vector<int64_t>{64} : std::vector<int64_t>{64, 512};
    std::vector<dtype> dtypes = {dtype::f32, dtype::f16, dtype::bf16, dtype::q8_0, dtype::q4_k, dtype::q5_k, dtype::q6_k};
    if (!only_dtype.empty() && !sweep && !prefill_only) {
        dtypes.clear();
        for (const dtype_info& d : dtype_table)
            if (d.weight && only_dtype == d.name) dtypes.push_back(d.id);
        if (dtypes.empty()) {
            std::fprintf(stderr, "%s: --dtype %s is not a weight type\n", argv[0], only_dtype.c_str());
            return 2;
        }
    }
    for (dtype wt : dtypes)
        if (K < 1 || K % dtype_info_of(wt).block_values != 0) {
            std::fprintf(stderr, "%s: --k %lld is not a positive multiple of %s's block of %d values\n", argv[0],
                         (long long)K, dtype_name(wt), int(dtype_info_of(wt).block_values));
            return 2;
        }

    std::printf("llmq kernel benchmark: %d thread(s), best ISA %s, timed by %s\n", threads, isa_name(best_isa()),
                bench_clock == probe_clock::wall ? "wall clock" : "thread CPU time");
    const double bandwidth = measure_memory_bandwidth_gbs(threads, bench_clock);
    std::printf("memory read bandwidth (%d threads): %.1f GB/s\n", threads, bandwidth);

    if (sweep || prefill_only) {
        isa which = best_isa();
        for (isa candidate : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16})
            if (!only_isa.empty() && only_isa == isa_name(candidate) && isa_supported(candidate)) which = candidate;
        if (sweep) m_sweep(threads, which, bandwidth, only_dtype);
        else prefill(threads, which, quick, only_dtype);
        return 0;
    }

    std::vector<isa> isas;
    for (isa which : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16}) {
        if (!isa_supported(which)) continue;
        if (!only_isa.empty() && only_isa != isa_name(which)) continue;
        isas.push_back(which);
    }

    for (isa which : isas) {
        const double fma_peak = measure_fma_peak_gflops(which, threads, bench_clock);
        const double gemm_peak = measure_gemm_gflops(which, threads, 256, 2048, 2048, bench_clock);
        std::printf("\n== %s: FMA peak %.1f GFLOP/s, f32 GEMM peak (M=256 N=2048 K=2048) %.1f GFLOP/s\n",
                    isa_name(which), fma_peak, gemm_peak);
        std::printf("%-10s %-5s %5s %6s %5s %10s %10s %8s %8s\n", "weights", "op", "M", "N", "K",
                    "ms", "rate", "ratio", "vs f32");
        for (dtype wt : dtypes) {
            for (int64_t N : Ns) {
                // ---- GEMV from memory: rotate over enough copies to exceed the caches.
                const std::size_t matrix_bytes = row_bytes(wt, K) * std::size_t(N);
                const std::size_t copies = std::max<std::size_t>(1, ((std::size_t(1) << 30) + matrix_bytes - 1) / matrix_bytes);
                std::vector<std::vector<uint8_t>> w(copies);
                w[0] = make_weights(wt, N, K);
                for (std::size_t c = 1; c < copies; ++c) w[c] = w[0];
                std::vector<float> x(static_cast<std::size_t>(K), 0.5f), y(static_cast<std::size_t>(N));
                std::barrier layer(threads);
                const double gemv_s = best_of(threads, quick ? 3 : 6, [&](int t) {
                    const split s = part_of(N, threads, t);
                    for (std::size_t c = 0; c < copies; ++c) {
                        gemm(which, x.data(), 1, K, K, w[c].data(), wt, int64_t(row_bytes(wt, K)), y.data(), N,
                             s.begin, s.end);
                        layer.arrive_and_wait();
                    }
                });
                const double per_matrix = gemv_s / double(copies);
                const double gbs = double(matrix_bytes) / per_matrix / 1e9;
                std::printf("%-10s %-5s %5d %6lld %5lld %10.3f %7.1f GB/s %7.2f %8s  %s\n", dtype_name(wt), "gemv", 1,
                            (long long)N, (long long)K, per_matrix * 1e3, gbs, gbs / bandwidth, "",
                            gemm_path(which, wt, 1));
                w.resize(1);

                // ---- GEMM (prefill): compute-bound; the scalar reference is skipped (minutes).
                if (which == isa::scalar) continue;
                for (int64_t M : Ms) {
                    std::vector<float> xm(static_cast<std::size_t>(M * K)), ym(std::size_t(M * N));
                    for (std::size_t i = 0; i < xm.size(); ++i) xm[i] = float(int(i % 17) - 8) / 8.0f;
                    const double s = best_of(threads, 5, [&](int t) {
                        const split p = part_of(N, threads, t);
                        gemm(which, xm.data(), M, K, K, w[0].data(), wt, int64_t(row_bytes(wt, K)), ym.data(), N,
                             p.begin, p.end);
                    });
                    const double gflops = 2.0 * double(M) * double(N) * double(K) / s / 1e9;
                    std::printf("%-10s %-5s %5lld %6lld %5lld %10.3f %5.1f GFLOP/s %5.2f %8.2f  %s\n", dtype_name(wt),
                                "gemm", (long long)M, (long long)N, (long long)K, s * 1e3, gflops, gflops / fma_peak,
                                gflops / gemm_peak, gemm_path(which, wt, M));
                    if (wt == dtype::bf16 && which == isa::avx512_bf16) {
                        std::vector<uint16_t> xb(xm.size());
                        row_from_f32(dtype::bf16, xm.data(), xb.data(), int64_t(xm.size()));
                        const double sb = best_of(threads, 5, [&](int t) {
                            const split p = part_of(N, threads, t);
                            gemm_bf16_dot(which, xb.data(), M, K, K, w[0].data(), int64_t(row_bytes(wt, K)),
                                          ym.data(), N, p.begin, p.end);
                        });
                        const double gb = 2.0 * double(M) * double(N) * double(K) / sb / 1e9;
                        std::printf("%-10s %-5s %5lld %6lld %5lld %10.3f %5.1f GFLOP/s %5.2f %8.2f\n", "bf16-dot",
                                    "gemm", (long long)M, (long long)N, (long long)K, sb * 1e3, gb, gb / fma_peak,
                                    gb / gemm_peak);
                    }
                }
            }
        }
    }
    std::printf("\nratio: GEMV GB/s / memory bandwidth; GEMM GFLOP/s / FMA peak; vs f32: / f32 GEMM peak\n");
    return 0;
}

// Benchmark: what a plugin swap costs while llmqd serves.
//
// A daemon with a mid-sized random model (f16 weights) serves 8 clients that stream
// continuously while 20 GEMM swaps alternate between two builds of gemm-cpu, 250 ms apart. The
// gap between consecutive tokens of a request (a decode step as clients see it) is measured for
// gaps that overlap a swap and for the others of the same period. Printed: each stage of a swap
// (probe, load, init, canary, publish, retire: median and max), both gap distributions, and the
// added latency in-flight requests saw: the largest gap that overlaps a swap minus the median
// quiet gap (the quiet p99 and max are printed beside it: on a shared machine the quiet gaps
// have their own tail).
#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>

#include "plugin_swap_daemon.hpp"

using namespace swaptest;

namespace {

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

struct Gap {
    Clock::time_point begin, end;
};

}  // namespace

TEST_CASE("plugin_swap_bench") {
    REQUIRE_FALSE(plugin_dir().empty());
    DaemonSetup setup;
    setup.model_args = "--dim 512 --layers 4 --heads 8 --kv-heads 4 --ffn 1408 --dtype f16";
    setup.plugins_toml = "dir = \"" + plugin_dir() + "\"\nprobe = true\n";
    Daemon daemon(setup);
    constexpr int clients = 8;
    constexpr int swaps = 20;

    std::mutex m;
    std::vector<Gap> gaps;
    std::atomic<int> errors{0};
    std::string first_error;
    Background load;
    for (int c = 0; c < clients; ++c)
        load.start([&, c](const Background& bg) {
            auto cl = daemon.try_connect("bench-" + std::to_string(c));
            if (!cl) {
                ++errors;
                return;
            }
            while (bg.running()) {
                Outcome o = generate(*cl, greedy_request(prompt_for(c), 48));
                std::lock_guard lock(m);
                if (!o.error.empty() && errors++ == 0) first_error = o.error;
                for (size_t i = 2; i < o.token_times.size(); ++i)  // decode gaps (not the prefill)
                    gaps.push_back({o.token_times[i - 1], o.token_times[i]});
            }
        });

    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // warm up
    const auto measure_begin = Clock::now();

    std::vector<Gap> windows;
    std::map<std::string, std::vector<double>> stages;
    const std::string builds[2] = {second_build("gemm-cpu"), built("gemm-cpu")};
    for (int i = 0; i < swaps; ++i) {
        const auto begin = Clock::now();
        json r = daemon.swap("gemm", builds[i % 2]);
        windows.push_back({begin, Clock::now()});
        REQUIRE_MESSAGE(r["swapped"].get<bool>(), r["message"].get<std::string>());
        for (const auto& s : r["stages"]) stages[s["stage"].get<std::string>()].push_back(s["ms"].get<double>());
        stages["total"].push_back(r["total_ms"].get<double>());
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    load.stop();
    CHECK_MESSAGE(errors.load() == 0, first_error);

    auto ms = [](Gap g) { return std::chrono::duration<double, std::milli>(g.end - g.begin).count(); };
    // Gaps that overlap a swap, and the others of the same period (the quiet 250 ms between
    // swaps), so that both see the same load from the rest of the machine.
    std::vector<double> quiet, during;
    for (const auto& g : gaps) {
        if (g.begin < measure_begin) continue;
        bool overlaps = false;
        for (const auto& w : windows) overlaps = overlaps || (g.end >= w.begin && g.begin <= w.end);
        (overlaps ? during : quiet).push_back(ms(g));
    }
    REQUIRE_FALSE(quiet.empty());
    REQUIRE_FALSE(during.empty());
    std::printf("\nplugin swap under load: %d clients streaming, %d gemm swaps (model dim 512, 4 layers, f16)\n",
                clients, swaps);
    std::printf("%-8s %10s %10s\n", "stage", "median ms", "max ms");
    for (const char* s : {"probe", "load", "init", "canary", "publish", "retire", "total"})
        std::printf("%-8s %10.3f %10.3f\n", s, pct(stages[s], 0.5), pct(stages[s], 1.0));
    const double quiet_p50 = pct(quiet, 0.5);
    std::printf("inter-token gap, quiet:        p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%zu gaps)\n", quiet_p50,
                pct(quiet, 0.99), pct(quiet, 1.0), quiet.size());
    std::printf("inter-token gap, during swaps: p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%zu gaps)\n",
                pct(during, 0.5), pct(during, 0.99), pct(during, 1.0), during.size());
    std::printf("largest added latency seen by an in-flight request during a swap: %.2f ms "
                "(largest gap during swaps - quiet p50)\n",
                pct(during, 1.0) - quiet_p50);
    std::printf("p99 gap during swaps - quiet p99: %+.2f ms; max - quiet max: %+.2f ms\n",
                pct(during, 0.99) - pct(quiet, 0.99), pct(during, 1.0) - pct(quiet, 1.0));
}

// Under load (16 clients streaming continuously), 50 swaps back and forth between two builds of
// the GEMM plugin (and 10 of the attention plugin) on a two-device group: every request
// completes, none fails, and each gives exactly the tokens the same request gave before any swap.
#include <atomic>
#include <map>
#include <mutex>

#include "plugin_swap_daemon.hpp"

using namespace swaptest;

TEST_CASE("plugin_swap_under_load_keeps_every_output_identical") {
    REQUIRE_FALSE(plugin_dir().empty());
    DaemonSetup setup;
    setup.model_args += " --dtype f16";
    setup.extra_toml = "[devices]\ncpu = 2\n";  // tensor = 2: every swap covers two devices
    setup.plugins_toml = "dir = \"" + plugin_dir() + "\"\nprobe = true\n";
    Daemon daemon(setup);

    constexpr int clients = 16;
    constexpr int max_tokens = 24;
    constexpr int gemm_swaps = 50;

    // The reference: each client's request before any swap (three times, all alike).
    std::vector<std::vector<int32_t>> expected(clients);
    {
        std::vector<std::thread> threads;
        std::mutex m;
        std::vector<std::string> problems;
        for (int c = 0; c < clients; ++c)
            threads.emplace_back([&, c] {
                auto client = daemon.try_connect("reference-" + std::to_string(c));
                if (!client) {
                    std::lock_guard lock(m);
                    problems.push_back("cannot connect");
                    return;
                }
                for (int round = 0; round < 3; ++round) {
                    Outcome o = generate(*client, greedy_request(prompt_for(c), max_tokens));
                    std::lock_guard lock(m);
                    if (!o.error.empty()) problems.push_back(o.error);
                    else if (o.tokens.size() != max_tokens) problems.push_back("short output");
                    else if (round == 0) expected[c] = o.tokens;
                    else if (o.tokens != expected[c]) problems.push_back("outputs differ without swaps");
                }
            });
        for (auto& t : threads) t.join();
        REQUIRE_MESSAGE(problems.empty(), problems.front());
    }

    // The same requests, continuously, while the plugins change under them.
    std::atomic<int> completed{0}, during_swaps{0};
    std::mutex m;
    std::vector<std::string> problems;
    Background load;
    for (int c = 0; c < clients; ++c)
        load.start([&, c](const Background& bg) {
            auto client = daemon.try_connect("load-" + std::to_string(c));
            if (!client) {
                std::lock_guard lock(m);
                problems.push_back("cannot connect");
                return;
            }
            while (bg.running()) {
                Outcome o = generate(*client, greedy_request(prompt_for(c), max_tokens));
                ++completed;
                if (bg.running()) ++during_swaps;
                if (!o.error.empty() || o.tokens != expected[c]) {
                    std::lock_guard lock(m);
                    problems.push_back("client " + std::to_string(c) + ": " +
                                       (o.error.empty() ? "tokens differ from the run without swaps" : o.error));
                }
            }
        });

    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // every client has a request running
    const std::string gemm[2] = {second_build("gemm-cpu"), built("gemm-cpu")};
    const std::string attention[2] = {second_build("attention-cpu"), built("attention-cpu")};
    int swapped = 0;
    for (int i = 0; i < gemm_swaps; ++i) {
        json r = daemon.swap("gemm", gemm[i % 2]);
        CHECK_MESSAGE(r["swapped"].get<bool>(), r["message"].get<std::string>());
        swapped += r["swapped"].get<bool>();
        if (i % 5 == 4) {
            json a = daemon.swap("attention", attention[(i / 5) % 2]);
            CHECK_MESSAGE(a["swapped"].get<bool>(), a["message"].get<std::string>());
        }
    }
    load.stop();

    CHECK(swapped == gemm_swaps);
    CHECK(daemon.plugin("gemm")["path"] == gemm[(gemm_swaps - 1) % 2]);
    CHECK_MESSAGE(problems.empty(), problems.size() << " request(s) went wrong; first: " << problems.front());
    MESSAGE(completed.load() << " requests completed, " << during_swaps.load() << " of them while swapping");
    CHECK(during_swaps.load() >= clients * 2);
    REQUIRE(daemon.alive());
    // Every retired plugin was closed: only the two plugins in use remain mapped.
    int mapped = 0;
    std::string maps = read_file("/proc/" + std::to_string(daemon.pid()) + "/maps");
    for (size_t at = 0; (at = maps.find("llmq-plugin-", at)) != std::string::npos; ++at)
        if (maps.find("r-xp", maps.rfind('\n', at) + 1) < at) ++mapped;
    MESSAGE("executable plugin mappings in llmqd after the swaps: " << mapped);
}

// [plugins] watch = true: a plugin file replaced in the watched folder (written elsewhere and
// renamed over it, or overwritten in place) is swapped in within a second, while a client
// streams; a bad file put there is refused and the old plugin keeps serving; SIGHUP reloads all.
#include <atomic>

#include "plugin_swap_daemon.hpp"

using namespace swaptest;

namespace {

// Wait until the listed plugin of `kind` was loaded after `since_ms`; returns the wait in ms.
double wait_for_new_load(Daemon& daemon, const std::string& kind, int64_t since_ms, Clock::time_point from) {
    const auto deadline = from + std::chrono::seconds(5);
    for (;;) {
        if (daemon.plugin(kind)["loaded_since_ms"].get<int64_t>() != since_ms)
            return std::chrono::duration<double, std::milli>(Clock::now() - from).count();
        REQUIRE_MESSAGE(Clock::now() < deadline, kind << " plugin not swapped within 5 s:\n" << daemon.log());
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

json last_report(Daemon& daemon) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (;;) {
        json recent = daemon.control("plugins.list", json::object())["recent"];
        if (!recent.empty()) return recent;
        REQUIRE_MESSAGE(Clock::now() < deadline, "no swap report within 5 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

void copy_bytes(const std::string& from, const std::string& to, bool in_place) {
    const std::string bytes = read_file(from);
    if (in_place) {  // same inode, truncated and rewritten: IN_CLOSE_WRITE
        std::ofstream out(to, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        return;
    }
    const std::string tmp = to + ".partial";  // write, then rename over: IN_MOVED_TO
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    fs::permissions(tmp, fs::perms::owner_all);
    fs::rename(tmp, to);
}

}  // namespace

TEST_CASE("plugin_swap_watch_picks_up_a_replaced_file_within_a_second") {
    REQUIRE_FALSE(plugin_dir().empty());
    const fs::path watched = fs::temp_directory_path() / ("llmq-watched-" + std::to_string(getpid()));
    fs::create_directories(watched);
    const std::string gemm = (watched / "llmq-gemm-cpu.so").string();
    const std::string attention = (watched / "llmq-attention-cpu.so").string();
    fs::copy_file(built("gemm-cpu"), gemm, fs::copy_options::overwrite_existing);
    fs::copy_file(built("attention-cpu"), attention, fs::copy_options::overwrite_existing);
    {
        DaemonSetup setup;
        setup.plugins_toml = "dir = \"" + watched.string() + "\"\nwatch = true\nprobe = true\n";
        Daemon daemon(setup);
        REQUIRE(daemon.control("plugins.list", json::object())["watch"].get<bool>());

        std::atomic<int> failures{0}, served{0};
        Background streaming;
        streaming.start([&](const Background& bg) {
            auto cl = daemon.try_connect("streaming");
            if (!cl) {
                ++failures;
                return;
            }
            const auto mine = greedy_request(prompt_for(5), 32);
            const Outcome first = generate(*cl, mine);
            while (bg.running()) {
                Outcome o = generate(*cl, mine);
                ++served;
                if (!o.error.empty() || o.tokens != first.tokens) ++failures;
            }
        });

        // Written elsewhere and renamed over the file.
        int64_t since = daemon.plugin("gemm")["loaded_since_ms"].get<int64_t>();
        auto t = Clock::now();
        copy_bytes(second_build("gemm-cpu"), gemm, false);
        double ms = wait_for_new_load(daemon, "gemm", since, t);
        MESSAGE("rename over the file: swapped after " << ms << " ms");
        CHECK(ms < 1000.0);
        // The job's report is filed once the old plugin is retired, just after the publish.
        json recent = last_report(daemon);
        CHECK(recent[0]["reason"] == "watch");
        CHECK(recent[0]["swapped"].get<bool>());

        // Overwritten in place (the running copy is private, so nothing changes under it).
        since = daemon.plugin("gemm")["loaded_since_ms"].get<int64_t>();
        t = Clock::now();
        copy_bytes(built("gemm-cpu"), gemm, true);
        ms = wait_for_new_load(daemon, "gemm", since, t);
        MESSAGE("overwrite in place: swapped after " << ms << " ms");
        CHECK(ms < 1000.0);

        // A plugin that computes wrong numbers put in its place is refused; the old one serves.
        since = daemon.plugin("gemm")["loaded_since_ms"].get<int64_t>();
        const auto refused_from = Clock::now();
        copy_bytes(fixture("wrong_numbers"), gemm, false);
        json refusal;
        for (;;) {
            recent = daemon.control("plugins.list", json::object())["recent"];
            if (!recent.empty() && !recent[0]["swapped"].get<bool>()) {
                refusal = recent[0];
                break;
            }
            REQUIRE_MESSAGE(Clock::now() - refused_from < std::chrono::seconds(5), "no refusal within 5 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        CHECK(refusal["reason"] == "watch");
        CHECK(refusal["refused_at"] == "canary");
        CHECK(daemon.plugin("gemm")["loaded_since_ms"].get<int64_t>() == since);
        CHECK(daemon.plugin("gemm")["name"] == "gemm-cpu");

        // Put the good build back, then SIGHUP: every plugin is loaded again.
        copy_bytes(built("gemm-cpu"), gemm, false);
        wait_for_new_load(daemon, "gemm", since, Clock::now());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const int64_t gemm_since = daemon.plugin("gemm")["loaded_since_ms"].get<int64_t>();
        const int64_t attention_since = daemon.plugin("attention")["loaded_since_ms"].get<int64_t>();
        t = Clock::now();
        REQUIRE(kill(daemon.pid(), SIGHUP) == 0);
        wait_for_new_load(daemon, "gemm", gemm_since, t);
        wait_for_new_load(daemon, "attention", attention_since, t);
        CHECK(contains(daemon.log(), "SIGHUP: reloading every plugin from its file"));

        streaming.stop();
        CHECK(failures.load() == 0);
        CHECK(served.load() > 0);
        CHECK(daemon.alive());
    }
    fs::remove_all(watched);
}

// Plugin files are read once and loaded as read (issue 12): a name flipped between two libraries
// while swaps run never gets an unprobed library's constructor run inside llmqd; a FIFO,
// /dev/zero, a directory, a symbolic link or an oversized file is refused at once with the
// reason; the swap queue is bounded; SIGTERM during a slow swap stops the daemon promptly.
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <set>

#include "plugin_swap_daemon.hpp"

using namespace swaptest;

namespace {

double time_scale() {
    const char* s = std::getenv("LLMQ_TEST_TIME_SCALE");
    const double v = s ? std::atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

std::chrono::milliseconds scaled(int ms) {
    return std::chrono::milliseconds(static_cast<int64_t>(ms * time_scale()));
}

// The pids the marking plugin's constructor wrote (one per load).
std::vector<pid_t> marks(const fs::path& marker) {
    std::vector<pid_t> pids;
    std::istringstream in(read_file(marker));
    for (long p; in >> p;) pids.push_back(static_cast<pid_t>(p));
    return pids;
}

// Swap and wait at most `limit` for the report; "" when it did not come (the swap is stuck).
json swap_within(Daemon& daemon, const std::string& kind, const std::string& path, std::chrono::milliseconds limit) {
    const uint64_t id = daemon.control("plugins.swap", {{"kind", kind}, {"path", path}})["job"].get<uint64_t>();
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        json j = daemon.control("plugins.job", {{"job", id}});
        if (j["state"] == "done" && j["reports"].size() == 1) return j["reports"][0];
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return json();
}

// Flips `link` between a and b (a symbolic link, or a regular file renamed over it) until stopped.
class Flipper {
public:
    Flipper(fs::path link, fs::path a, fs::path b, bool symlinks)
        : thread_([=, this] {
              const fs::path tmp = link.string() + ".next";
              for (uint64_t i = 0; running_.load(); ++i) {
                  const fs::path& target = (i % 2) ? b : a;
                  std::error_code ec;
                  fs::remove(tmp, ec);
                  if (symlinks) fs::create_symlink(target, tmp, ec);
                  else fs::copy_file(target, tmp, fs::copy_options::overwrite_existing, ec);
                  if (!ec) std::rename(tmp.c_str(), link.c_str());
                  ++flips_;
                  std::this_thread::sleep_for(std::chrono::microseconds(300 + (i * 7919) % 1500));
              }
          }) {}
    ~Flipper() { stop(); }
    void stop() {
        running_.store(false);
        if (thread_.joinable()) thread_.join();
    }
    uint64_t flips() const { return flips_.load(); }

private:
    std::atomic<bool> running_{true};
    std::atomic<uint64_t> flips_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE("a_name_flipped_between_two_libraries_never_runs_an_unprobed_constructor_in_llmqd") {
    REQUIRE_FALSE(plugin_dir().empty());
    const fs::path marker = fs::temp_directory_path() / ("llmq-ctor-marks-" + std::to_string(getpid()));
    fs::remove(marker);
    setenv("LLMQ_TEST_CTOR_MARKER", marker.c_str(), 1);
    DaemonSetup setup;
    setup.plugins_toml = "dir = \"" + plugin_dir() + "\"\nprobe = true\n";
    Daemon daemon(setup);
    unsetenv("LLMQ_TEST_CTOR_MARKER");
    const fs::path good = daemon.dir() / "good.so", bad = daemon.dir() / "marks.so";
    fs::copy_file(fixture("none"), good);
    fs::copy_file(fixture("ctor_marks"), bad);

    int swapped = 0, refused = 0;
    for (bool symlinks : {true, false}) {
        CAPTURE(symlinks);
        const fs::path name = daemon.dir() / (symlinks ? "flipped-link.so" : "flipped-file.so");
        Flipper flipper(name, good, bad, symlinks);
        while (!fs::exists(fs::symlink_status(name))) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        for (int i = 0; i < 60; ++i) {
            json r = daemon.swap("gemm", name.string());
            const std::string message = r["message"].get<std::string>();
            r["swapped"].get<bool>() ? ++swapped : ++refused;
            if (symlinks) {
                // Opened with O_NOFOLLOW: a symbolic link is refused before any code is read.
                CHECK_FALSE(r["swapped"].get<bool>());
                CHECK_MESSAGE(contains(message, "is a symbolic link"), message);
            } else if (!r["swapped"].get<bool>()) {
                // Whatever the name held when it was read is what the probe judged.
                CHECK_MESSAGE(contains(message, "refuses to start on purpose"), message);
                CHECK(r["refused_at"] == "probe");
            }
            REQUIRE(daemon.alive());
            // A refused link is answered at once; let the name change between swaps anyway.
            if (symlinks) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        flipper.stop();
        CHECK(flipper.flips() > 20);
    }
    const auto pids = marks(marker);
    fs::remove(marker);
    for (pid_t p : pids) CHECK_MESSAGE(p != daemon.pid(), "llmqd ran the constructor of a library no probe passed");
    // The test did what it says: the marking library was read and refused (in probes), and the
    // good one was swapped in, both through the flipped name.
    CHECK(!pids.empty());
    CHECK(swapped > 0);
    CHECK(refused > 0);
    auto client = daemon.connect("after");
    CHECK(generate(*client, greedy_request(prompt_for(1), 4)).error.empty());
}

TEST_CASE("a_fifo_a_device_a_directory_a_link_or_an_oversized_file_is_refused_at_once_with_the_reason") {
    REQUIRE_FALSE(plugin_dir().empty());
    DaemonSetup setup;
    // The cap leaves room for the real plugins (12.6 MiB each in a sanitized build); big.so
    // passes it by 2 MiB.
    setup.plugins_toml = "dir = \"" + plugin_dir() + "\"\nprobe = true\nmax_file_size = \"64MiB\"\n";
    Daemon daemon(setup);
    const std::string fifo = (daemon.dir() / "fifo.so").string();
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    const std::string dir = (daemon.dir() / "dir.so").string();
    fs::create_directory(dir);
    const std::string big = (daemon.dir() / "big.so").string();
    {
        std::ofstream out(big, std::ios::binary);
        const std::string block(1 << 16, '\0');
        for (int i = 0; i < 66 * 16; ++i) out << block;  // 66 MiB
    }
    const std::string link = (daemon.dir() / "link.so").string();
    fs::create_symlink(fixture("none"), link);
    struct Case {
        std::string path, says;
    };
    const std::vector<Case> cases = {{fifo, "is a FIFO (named pipe), not a regular file"},
                                     {"/dev/zero", "is a character device, not a regular file"},
                                     {dir, "is a directory, not a regular file"},
                                     {big, "(69206016 bytes), larger than [plugins] max_file_size (64.0 MiB)"},
                                     {link, "is a symbolic link"}};
    for (const auto& c : cases) {
        CAPTURE(c.path);
        const auto start = Clock::now();
        json r = swap_within(daemon, "gemm", c.path, scaled(5000));
        REQUIRE_MESSAGE(!r.is_null(), "the swap of " << c.path << " did not finish: the swap thread is stuck");
        CHECK(Clock::now() - start < scaled(2000));
        const std::string message = r["message"].get<std::string>();
        CHECK_FALSE(r["swapped"].get<bool>());
        CHECK(r["refused_at"] == "load");
        CHECK_MESSAGE(contains(message, c.path), message);
        CHECK_MESSAGE(contains(message, c.says), message);
        CHECK_MESSAGE(contains(message, "keeps serving"), message);
    }
    // And the daemon still swaps a good plugin afterwards.
    json ok = swap_within(daemon, "gemm", fixture("none"), scaled(20000));
    REQUIRE(!ok.is_null());
    CHECK_MESSAGE(ok["swapped"].get<bool>(), ok["message"]);
}

TEST_CASE("the_swap_queue_is_bounded_and_sigterm_during_a_slow_swap_stops_llmqd_promptly") {
    REQUIRE_FALSE(plugin_dir().empty());
    DaemonSetup setup;
    setup.plugins_toml = "dir = \"" + plugin_dir() + "\"\nprobe = true\nswap_queue = 3\n";
    Daemon daemon(setup);
    // A plugin whose init hangs: its probe runs until the probe's 20 s timeout.
    const uint64_t slow =
        daemon.control("plugins.swap", {{"kind", "gemm"}, {"path", fixture("init_hangs")}})["job"].get<uint64_t>();
    const auto deadline = Clock::now() + scaled(10000);
    while (daemon.control("plugins.job", {{"job", slow}})["state"] != "running") {
        REQUIRE(Clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto client = daemon.connect("queue");
    for (int i = 0; i < 3; ++i) {
        auto r = client->control("plugins.swap", {{"kind", "gemm"}, {"path", fixture("init_hangs")}},
                                 std::chrono::seconds(10));
        REQUIRE_MESSAGE(r.ok(), r.error().message);
    }
    auto full = client->control("plugins.swap", {{"kind", "gemm"}, {"path", fixture("none")}}, std::chrono::seconds(10));
    REQUIRE_FALSE(full.ok());
    CHECK(full.error().code == llmq::ipc::ErrorCode::busy);
    CHECK_MESSAGE(contains(full.error().message, "3 plugin swap jobs are already waiting"), full.error().message);
    CHECK_MESSAGE(contains(full.error().message, "[plugins] swap_queue"), full.error().message);
    auto reload = client->control("plugins.reload", json::object(), std::chrono::seconds(10));
    CHECK_FALSE(reload.ok());
    // Other commands keep answering meanwhile.
    CHECK(client->control("plugins.list", json::object(), std::chrono::seconds(10)).ok());
    client.reset();

    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the probe is in its init now
    const auto stop = Clock::now();
    REQUIRE(kill(daemon.pid(), SIGTERM) == 0);
    while (daemon.alive() && Clock::now() - stop < scaled(15000)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stop);
    CHECK_MESSAGE(took < scaled(3000), "llmqd took " << took.count() << " ms to stop during a swap");
    CHECK_FALSE(daemon.alive());
    const std::string log = daemon.log();
    CHECK_MESSAGE(contains(log, "because llmqd is stopping"), log);
    CHECK_MESSAGE(contains(log, "stopped"), log);
}

// CPU devices' thread counts follow the process's affinity and its cgroup CPU limit, and
// devices never put more threads on the usable cores than there are (unless they outnumber
// the cores). Run plainly and under `taskset -c 0` (LLMQ_TEST_EXPECT_CORES=1 says so).
#include <doctest/doctest.h>
#include <sched.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "llmq/runtime/device.hpp"

namespace fs = std::filesystem;
using namespace llmq;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char pattern[] = "/tmp/llmq-cgroup-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempDir() { fs::remove_all(path); }
    void write(const fs::path& relative, const std::string& text) const {
        fs::create_directories((path / relative).parent_path());
        std::ofstream(path / relative) << text;
    }
};

int affinity_count() {
    cpu_set_t set;
    REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
    return CPU_COUNT(&set);
}

// Points cgroup_cpu_limit() at a fake tree for one scope.
struct FakeCgroup {
    TempDir dir;
    FakeCgroup(const std::string& self, const std::string& cpu_max) {
        dir.write("self", self);
        if (!cpu_max.empty()) dir.write("root/cpu.max", cpu_max);
        else fs::create_directories(dir.path / "root");
        ::setenv("LLMQ_PROC_SELF_CGROUP", (dir.path / "self").c_str(), 1);
        ::setenv("LLMQ_CGROUP_ROOT", (dir.path / "root").c_str(), 1);
    }
    ~FakeCgroup() {
        ::unsetenv("LLMQ_PROC_SELF_CGROUP");
        ::unsetenv("LLMQ_CGROUP_ROOT");
    }
};

}  // namespace

TEST_CASE("cgroup v2 cpu.max gives whole cores, rounded up; max is no limit") {
    TempDir t;
    t.write("cpu.max", "150000 100000\n");
    CHECK(cgroup_cpu_limit("0::/\n", t.path) == 2);
    t.write("cpu.max", "max 100000\n");
    CHECK(cgroup_cpu_limit("0::/\n", t.path) == 0);
    t.write("cpu.max", "20000 100000\n");
    CHECK(cgroup_cpu_limit("0::/\n", t.path) == 1);  // a fifth of a core still runs one thread
}

TEST_CASE("cgroup v2: the tightest of the process's cgroup and its ancestors wins") {
    TempDir t;
    t.write("cpu.max", "max 100000\n");
    t.write("a/cpu.max", "300000 100000\n");
    t.write("a/b/cpu.max", "max 100000\n");
    CHECK(cgroup_cpu_limit("0::/a/b\n", t.path) == 3);
    t.write("a/b/cpu.max", "100000 100000\n");
    CHECK(cgroup_cpu_limit("0::/a/b\n", t.path) == 1);
    // A container's own view: its path does not exist below the mount, whose root has the limit.
    TempDir c;
    c.write("cpu.max", "200000 100000\n");
    CHECK(cgroup_cpu_limit("0::/docker/0123abcd\n", c.path) == 2);
}

TEST_CASE("cgroup v1 cfs quota and period under cpu,cpuacct; -1 is no limit") {
    TempDir t;
    t.write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    t.write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    t.write("cpu,cpuacct/job/cpu.cfs_quota_us", "250000\n");
    t.write("cpu,cpuacct/job/cpu.cfs_period_us", "100000\n");
    const std::string self = "4:memory:/job\n3:cpu,cpuacct:/job\n0::/\n";
    CHECK(cgroup_cpu_limit(self, t.path) == 3);
    CHECK(cgroup_cpu_limit("3:cpu,cpuacct:/\n", t.path) == 0);
    CHECK(cgroup_cpu_limit("4:memory:/job\n", t.path) == 0);  // no cpu controller: no limit
}

TEST_CASE("devices follow the affinity mask") {
    const int cores = affinity_count();
    if (const char* expect = std::getenv("LLMQ_TEST_EXPECT_CORES")) {
        REQUIRE_MESSAGE(cores == std::atoi(expect), "run under taskset -c 0 by meson");
    }
    FakeCgroup none("0::/\n", "");
    CHECK(static_cast<int>(usable_cores().size()) == cores);
    auto one = cpu_device_infos({1, 0, 1ull << 30});
    REQUIRE(one.size() == 1);
    CHECK(one[0].threads == cores);
    std::set<int> allowed;
    cpu_set_t set;
    sched_getaffinity(0, sizeof(set), &set);
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) allowed.insert(c);
    for (int c : one[0].cores) CHECK(allowed.count(c) == 1);
    // Asking for more threads than the cores cannot oversubscribe them.
    auto greedy = cpu_device_infos({1, 4 * cores, 1ull << 30});
    CHECK(greedy[0].threads == cores);
}

TEST_CASE("devices follow the cgroup CPU limit") {
    FakeCgroup quota("0::/\n", "100000 100000\n");  // one core's worth
    CHECK(cgroup_cpu_limit() == 1);
    CHECK(usable_cores().size() == 1);
    auto d = cpu_device_infos({1, 0, 1ull << 30});
    CHECK(d[0].threads == 1);
    auto two = cpu_device_infos({2, 0, 1ull << 30});
    CHECK(two[0].threads == 1);
    CHECK(two[1].threads == 1);
}

TEST_CASE("several devices share out the cores without oversubscribing them") {
    FakeCgroup none("0::/\n", "");
    const int cores = affinity_count();
    if (cores < 2) return;  // under taskset -c 0 there is nothing to share out
    auto d = cpu_device_infos({2, cores, 1ull << 30});  // asks for every core per device
    REQUIRE(d.size() == 2);
    CHECK(d[0].threads + d[1].threads <= cores);
    std::set<int> used;
    for (const auto& dev : d)
        for (int c : dev.cores) CHECK(used.insert(c).second);  // no core is in two devices
    // More devices than cores: one thread each, cores shared.
    auto many = cpu_device_infos({cores + 1, 0, 1ull << 30});
    for (const auto& dev : many) CHECK(dev.threads == 1);
}

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "device_worker.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/log.hpp"

namespace llmq {

uint64_t host_physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return 0;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

int host_online_cores() { return static_cast<int>(usable_cores().size()); }

CpuDevice::CpuDevice(int index, int threads, std::vector<int> cores, uint64_t memory_capacity) {
    info_.kind = DeviceKind::cpu;
    info_.index = index;
    info_.name = "cpu:" + std::to_string(index);
    info_.memory_capacity = memory_capacity;
    info_.threads = threads < 1 ? 1 : threads;
    info_.cores = std::move(cores);
    worker_ = std::make_unique<DeviceWorker>([this] {
        if (!info_.cores.empty()) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(info_.cores[0], &set);
            (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        }
        pool_ = std::make_unique<ThreadPool>(info_.threads, info_.cores);
    });
}

CpuDevice::~CpuDevice() {
    worker_.reset();  // runs what is queued, then stops
    for (auto& [p, bytes] : allocations_) std::free(p);
}

void* CpuDevice::allocate(uint64_t bytes, uint64_t alignment, std::string* why) {
    if (alignment < 64) alignment = 64;
    const uint64_t rounded = (bytes + alignment - 1) / alignment * alignment;
    uint64_t used = used_.load();
    do {
        if (rounded > info_.memory_capacity || used > info_.memory_capacity - rounded) {
            if (why)
                *why = info_.name + ": cannot allocate " + std::to_string(rounded) + " bytes; " +
                       std::to_string(used) + " of " + std::to_string(info_.memory_capacity) +
                       " in use";
            return nullptr;
        }
    } while (!used_.compare_exchange_weak(used, used + rounded));
    void* p = std::aligned_alloc(alignment, rounded);
    if (!p) {
        used_.fetch_sub(rounded);
        if (why) *why = info_.name + ": the host is out of memory";
        return nullptr;
    }
    std::lock_guard lock(alloc_mutex_);
    allocations_.emplace_back(p, rounded);
    return p;
}

void CpuDevice::deallocate(void* pointer) {
    if (!pointer) return;
    std::lock_guard lock(alloc_mutex_);
    for (auto it = allocations_.begin(); it != allocations_.end(); ++it) {
        if (it->first == pointer) {
            used_.fetch_sub(it->second);
            std::free(pointer);
            allocations_.erase(it);
            return;
        }
    }
}

void CpuDevice::copy_from_host(void* dst, const void* src, uint64_t bytes) {
    std::memcpy(dst, src, bytes);
}
void CpuDevice::copy_to_host(void* dst, const void* src, uint64_t bytes) {
    std::memcpy(dst, src, bytes);
}

void CpuDevice::parallel_for(int64_t n, llmq_range_fn fn, void* arg) {
    pool_->parallel_for(n, fn, arg);
}

void CpuDevice::post(std::function<void()> task) { worker_->post(std::move(task)); }

namespace {

std::string read_first_line(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return "";
    return line;
}

// Cores allowed by one cgroup directory's limit, or 0 for none (no file, "max", -1).
double cgroup_dir_limit(const std::filesystem::path& dir, bool v2) {
    if (v2) {
        std::istringstream in(read_first_line(dir / "cpu.max"));
        std::string quota;
        double period = 0;
        if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
        char* end = nullptr;
        const double q = std::strtod(quota.c_str(), &end);
        return end != quota.c_str() && q > 0 ? q / period : 0;
    }
    const std::string quota = read_first_line(dir / "cpu.cfs_quota_us");
    const std::string period = read_first_line(dir / "cpu.cfs_period_us");
    if (quota.empty() || period.empty()) return 0;
    const double q = std::strtod(quota.c_str(), nullptr), p = std::strtod(period.c_str(), nullptr);
    return q > 0 && p > 0 ? q / p : 0;
}

// The tightest limit of `relative` and each of its ancestors below `root` (a cgroup's limit
// binds its children; inside a container the path of /proc/self/cgroup may not exist under
// the container's own mount, whose root then holds the limit).
double cgroup_path_limit(const std::filesystem::path& root, std::string relative, bool v2) {
    double best = 0;
    for (;;) {
        while (!relative.empty() && relative.back() == '/') relative.pop_back();
        const double l = cgroup_dir_limit(relative.empty() ? root : root / relative.substr(relative[0] == '/'), v2);
        if (l > 0 && (best == 0 || l < best)) best = l;
        if (relative.empty()) return best;
        const size_t slash = relative.rfind('/');
        relative = slash == std::string::npos ? "" : relative.substr(0, slash);
    }
}

}  // namespace

int cgroup_cpu_limit(const std::string& proc_self_cgroup, const std::filesystem::path& cgroup_root) {
    double best = 0;
    std::istringstream lines(proc_self_cgroup);
    std::string line;
    while (std::getline(lines, line)) {
        // "hierarchy-id:controllers:path"; v2 is "0::path", v1 lists its controllers.
        const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        double l = 0;
        if (controllers.empty()) {
            // Unified, or the v2 part of a hybrid mount.
            l = cgroup_path_limit(std::filesystem::exists(cgroup_root / "cgroup.controllers") ||
                                          !std::filesystem::exists(cgroup_root / "unified")
                                      ? cgroup_root
                                      : cgroup_root / "unified",
                                  path, true);
        } else {
            std::istringstream names(controllers);
            std::string name;
            bool cpu = false;
            while (std::getline(names, name, ',')) cpu = cpu || name == "cpu";
            if (!cpu) continue;
            for (const char* mount : {"cpu,cpuacct", "cpu", "cpuacct,cpu"}) {
                if (!std::filesystem::exists(cgroup_root / mount)) continue;
                l = cgroup_path_limit(cgroup_root / mount, path, false);
                break;
            }
        }
        if (l > 0 && (best == 0 || l < best)) best = l;
    }
    return best > 0 ? std::max(1, static_cast<int>(std::ceil(best - 1e-9))) : 0;
}

int cgroup_cpu_limit() {
    const char* root = std::getenv("LLMQ_CGROUP_ROOT");
    const char* self = std::getenv("LLMQ_PROC_SELF_CGROUP");
    std::ifstream in(self && *self ? self : "/proc/self/cgroup");
    std::stringstream text;
    text << in.rdbuf();
    return cgroup_cpu_limit(text.str(), root && *root ? root : "/sys/fs/cgroup");
}

std::vector<int> usable_cores() {
    std::vector<int> cores;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cores.push_back(c);
    }
    if (cores.empty()) {
        const long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (int c = 0; c < std::max(1L, n); ++c) cores.push_back(c);
    }
    // A quota of N cores lets N threads run at once: more would be throttled in turn, and a
    // fork-join step waits for the last of them.
    if (const int limit = cgroup_cpu_limit(); limit > 0 && static_cast<size_t>(limit) < cores.size())
        cores.resize(static_cast<size_t>(limit));
    return cores;
}

std::vector<DeviceInfo> cpu_device_infos(const CpuDeviceOptions& options) {
    const int count = options.count < 1 ? 1 : options.count;
    const std::vector<int> core_ids = usable_cores();
    const int cores = static_cast<int>(core_ids.size());
    // Every device's threads on cores of their own: threads_per_device may not ask for more
    // than its share. Devices outnumbering cores get one thread each and share cores.
    const int share = std::max(1, cores / count);
    int per = options.threads_per_device > 0 ? options.threads_per_device : share;
    if (per > share) {
        log::warn("[devices] cpu_threads_per_device = " + std::to_string(per) + " with " + std::to_string(count) +
                  " CPU device(s) would put " + std::to_string(per * count) + " threads on " + std::to_string(cores) +
                  " usable core(s) (affinity and cgroup CPU limit); using " + std::to_string(share) + " per device");
        per = share;
    }
    const uint64_t capacity =
        options.memory_limit > 0 ? options.memory_limit : host_physical_memory() / count;
    std::vector<DeviceInfo> infos;
    size_t next = 0;
    for (int i = 0; i < count; ++i) {
        DeviceInfo d;
        d.kind = DeviceKind::cpu;
        d.index = i;
        d.name = "cpu:" + std::to_string(i);
        d.memory_capacity = capacity;
        d.threads = per;
        for (int t = 0; t < per; ++t) d.cores.push_back(core_ids[next++ % core_ids.size()]);
        infos.push_back(std::move(d));
    }
    return infos;
}

std::vector<std::unique_ptr<Device>> make_cpu_devices(const CpuDeviceOptions& options) {
    std::vector<std::unique_ptr<Device>> devices;
    for (auto& d : cpu_device_infos(options))
        devices.push_back(std::make_unique<CpuDevice>(d.index, d.threads, d.cores, d.memory_capacity));
    return devices;
}

}  // namespace llmq

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "device_worker.hpp"
#include "llmq/runtime/device.hpp"

namespace llmq {

uint64_t host_physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return 0;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

int host_online_cores() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

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

std::vector<DeviceInfo> cpu_device_infos(const CpuDeviceOptions& options) {
    const int count = options.count < 1 ? 1 : options.count;
    std::vector<int> core_ids;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) core_ids.push_back(c);
    }
    if (core_ids.empty())
        for (int c = 0; c < host_online_cores(); ++c) core_ids.push_back(c);
    const int per = options.threads_per_device > 0
                        ? options.threads_per_device
                        : std::max(1, static_cast<int>(core_ids.size()) / count);
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

// Devices: where weights, KV cache and activations live and where kernels run.
//
// A device is a CUDA GPU or a CPU device (a group of cores with an optional memory limit,
// so several CPU devices can stand in for several GPUs). Every device has one worker thread;
// the engine submits a device's share of a step to it with run(). Memory comes from
// allocate(): host memory for CPU devices, device memory for CUDA ones, always counted
// against the device's capacity so that the planner's numbers are the ones enforced.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llmq/runtime/status.hpp"
#include "llmq/runtime/thread_pool.hpp"
#include "llmq_plugin.h"

namespace llmq {

class Backend;
class DeviceWorker;

enum class DeviceKind { cpu, cuda };

struct DeviceInfo {
    DeviceKind kind = DeviceKind::cpu;
    int index = 0;              // ordinal within its kind
    std::string name;           // "cpu:0", "cuda:1"
    uint64_t memory_capacity;   // bytes llmq may plan against, before memory_fraction
    int threads = 1;            // CPU: cores it owns; CUDA: 1
    std::vector<int> cores;     // CPU: the core ids (may be shared when oversubscribed)
};

class Device {
public:
    virtual ~Device() = default;

    virtual const DeviceInfo& info() const = 0;
    llmq_backend backend() const {
        return info().kind == DeviceKind::cpu ? LLMQ_BACKEND_CPU : LLMQ_BACKEND_CUDA;
    }

    // Memory in the device's own space; nullptr with *why set when it does not fit the
    // capacity. Thread-safe.
    virtual void* allocate(uint64_t bytes, uint64_t alignment, std::string* why) = 0;
    virtual void deallocate(void* pointer) = 0;
    virtual uint64_t memory_used() const = 0;

    // Copies between host memory and this device's memory (plain memcpy on a CPU device).
    virtual void copy_from_host(void* device_dst, const void* host_src, uint64_t bytes) = 0;
    virtual void copy_to_host(void* host_dst, const void* device_src, uint64_t bytes) = 0;

    // Run fn over [0, n) across the device's cores (CPU) or inline (CUDA). Only from the
    // device's worker thread.
    virtual void parallel_for(int64_t n, llmq_range_fn fn, void* arg) = 0;
    template <typename F>
    void parallel_for(int64_t n, F&& f) {
        parallel_for(
            n, [](void* a, int64_t b, int64_t e) { (*static_cast<F*>(a))(b, e); }, &f);
    }

    // CUDA: the device's cudaStream_t; CPU: nullptr.
    virtual void* stream() const { return nullptr; }
    // CUDA: make the device's GPU the calling thread's current device (before a plugin's init
    // on the loading thread, as the GPU contract asks); CPU: nothing.
    virtual void make_current() const {}
    virtual void synchronize() {}

    // Queue a task on the device's worker thread; tasks run in order. Thread-safe.
    virtual void post(std::function<void()> task) = 0;

    // The backend that computes on this device (backend.hpp): the element-wise ops, weight
    // placement, scratch memory and communicators the model code uses. The device must outlive
    // it. Thread: the loading thread.
    [[nodiscard]] virtual Expected<std::unique_ptr<Backend>> create_backend() = 0;
};

// The CPU device: a worker thread plus a ThreadPool over its cores, memory from the heap
// counted against an optional limit.
class CpuDevice final : public Device {
public:
    // memory_limit 0: the host's physical memory divided by the number of CPU devices.
    CpuDevice(int index, int threads, std::vector<int> cores, uint64_t memory_capacity);
    ~CpuDevice() override;

    const DeviceInfo& info() const override { return info_; }
    void* allocate(uint64_t bytes, uint64_t alignment, std::string* why) override;
    void deallocate(void* pointer) override;
    uint64_t memory_used() const override { return used_.load(); }
    void copy_from_host(void* dst, const void* src, uint64_t bytes) override;
    void copy_to_host(void* dst, const void* src, uint64_t bytes) override;
    void parallel_for(int64_t n, llmq_range_fn fn, void* arg) override;
    void post(std::function<void()> task) override;
    Expected<std::unique_ptr<Backend>> create_backend() override;  // a CpuBackend

private:
    DeviceInfo info_;
    std::unique_ptr<ThreadPool> pool_;  // created on the worker thread (pins it)
    std::atomic<uint64_t> used_{0};
    std::mutex alloc_mutex_;
    std::vector<std::pair<void*, uint64_t>> allocations_;
    std::unique_ptr<DeviceWorker> worker_;
};

struct CpuDeviceOptions {
    int count = 1;                  // number of CPU devices
    int threads_per_device = 0;     // 0: the host's cores divided evenly (at least 1)
    uint64_t memory_limit = 0;      // per device; 0: physical memory / count
};

// What make_cpu_devices would build (names, cores, capacities), without starting threads:
// for planning.
std::vector<DeviceInfo> cpu_device_infos(const CpuDeviceOptions& options);

// Build the CPU devices of this host over usable_cores(). Cores are dealt out in order, each
// device's threads pinned to its own; threads_per_device is capped at the cores / devices
// share (with a warning), so devices never oversubscribe cores when the cores suffice; when
// there are more devices than cores they get one thread each and share cores (tests stand 4
// devices on 2 cores).
std::vector<std::unique_ptr<Device>> make_cpu_devices(const CpuDeviceOptions& options);

// The cores this process may run threads on: its sched_getaffinity set (taskset, cpusets), in
// order, cut to the first N when its cgroup allows only N cores' worth of CPU time.
std::vector<int> usable_cores();

// The CPU limit of the process's cgroups in whole cores (rounded up), or 0 when none: cgroup
// v2 cpu.max ("QUOTA PERIOD" or "max ...") and v1 cpu.cfs_quota_us / cpu.cfs_period_us, of
// the process's cgroup and every ancestor; the tightest wins. The first form reads
// /proc/self/cgroup and /sys/fs/cgroup, or the files that LLMQ_PROC_SELF_CGROUP and
// LLMQ_CGROUP_ROOT name (a test hook); the second takes the text of /proc/self/cgroup and the
// mount root (v1 controllers under ROOT/cpu,cpuacct or ROOT/cpu).
int cgroup_cpu_limit();
int cgroup_cpu_limit(const std::string& proc_self_cgroup, const std::filesystem::path& cgroup_root);

// Physical memory of this host, and usable_cores().size().
uint64_t host_physical_memory();
int host_online_cores();

}  // namespace llmq

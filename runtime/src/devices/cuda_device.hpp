// The CUDA device: one GPU, or one logical device of a GPU split into several
// ([devices] cuda_devices_per_gpu), each with its own worker thread, stream and memory limit.
// Memory comes from a caching allocator over cudaMalloc (never managed memory): freed blocks
// are kept by size and handed out again, and everything held (in use or cached) is counted
// against the device's capacity, so the planner's numbers are the ones enforced. All logical
// devices of a GPU share its primary context, so their pointers are valid on each other's
// streams (the device-memory communicator relies on it).
//
// Only the files of the CUDA backend include this header (it needs the CUDA runtime's).
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmq/runtime/config.hpp"
#include "llmq/runtime/device.hpp"

namespace llmq {

class DeviceWorker;

// One CUDA device as the enumeration found it (what make_cuda_devices builds).
struct CudaDeviceSpec {
    DeviceInfo info;          // kind cuda, index = the CUDA ordinal, name "cuda:0" or "cuda:0.1"
    int ordinal = 0;          // CUDA ordinal (after CUDA_VISIBLE_DEVICES)
    int logical = 0;          // which logical device of its GPU
    int logical_count = 1;    // logical devices of its GPU
    std::string gpu_name;     // cudaDeviceProp::name
    uint64_t gpu_total = 0;   // the whole GPU's memory
    uint64_t gpu_free = 0;    // free when enumerated
    CudaCommunicator communicator = CudaCommunicator::automatic;
};

class CudaDevice final : public Device {
public:
    // Starts the worker (current device = spec.ordinal) and creates the stream on it.
    static Expected<std::unique_ptr<CudaDevice>> create(const CudaDeviceSpec& spec);
    ~CudaDevice() override;

    const DeviceInfo& info() const override { return spec_.info; }
    const CudaDeviceSpec& spec() const { return spec_; }
    int ordinal() const { return spec_.ordinal; }
    cudaStream_t cuda_stream() const { return stream_; }

    // The caching allocator (thread-safe). cudaMalloc aligns to 256; a larger alignment (the
    // KV pools ask 4096) takes a block that much larger and an offset into it.
    void* allocate(uint64_t bytes, uint64_t alignment, std::string* why) override;
    void deallocate(void* pointer) override;
    // How many blocks were handed back so far: device memory that a recorded CUDA graph
    // points into may have been reused since it was recorded unless this stayed the same.
    uint64_t deallocations() const { return deallocations_.load(); }
    uint64_t memory_used() const override { return in_use_.load(); }
    // Bytes taken from the GPU: in use plus cached.
    uint64_t memory_reserved() const;

    // Synchronous copies on the device's stream (any thread).
    void copy_from_host(void* device_dst, const void* host_src, uint64_t bytes) override;
    void copy_to_host(void* host_dst, const void* device_src, uint64_t bytes) override;
    // Inline: a GPU parallelises inside its kernels.
    void parallel_for(int64_t n, llmq_range_fn fn, void* arg) override;
    void* stream() const override { return stream_; }
    void synchronize() override;
    void post(std::function<void()> task) override;
    Expected<std::unique_ptr<Backend>> create_backend() override;  // a CudaBackend

    // The CUDA device whose worker is the calling thread, or null on any other thread
    // (communicators use it to find the caller's stream).
    static CudaDevice* current();
    // Makes this device's GPU current on the calling thread (the loading thread's uploads,
    // plugin init).
    void make_current() const override;

private:
    explicit CudaDevice(const CudaDeviceSpec& spec);
    static uint64_t rounded_size(uint64_t bytes);
    void release_cache_locked();

    CudaDeviceSpec spec_;
    cudaStream_t stream_ = nullptr;
    std::atomic<uint64_t> in_use_{0};
    std::atomic<uint64_t> deallocations_{0};
    mutable std::mutex alloc_mutex_;
    uint64_t reserved_ = 0;                            // in use + cached, under alloc_mutex_
    struct Block {
        void* base;     // what cudaMalloc returned
        uint64_t size;  // its rounded size
    };
    std::unordered_map<void*, Block> live_;            // pointer handed out -> its block
    std::multimap<uint64_t, void*> cached_;            // rounded size -> free block's base
    std::unique_ptr<DeviceWorker> worker_;
};

// The CUDA devices [devices] selects: every visible GPU (CUDA_VISIBLE_DEVICES applies) or the
// listed ordinals, each split into cuda_devices_per_gpu logical devices whose capacity is
// their share of the GPU's free memory, or cuda_memory_limit when that is less. None (with *why saying why: no driver, no device) is not an error
// here; the caller decides. A listed ordinal that is not visible is an error.
Expected<std::vector<CudaDeviceSpec>> cuda_device_specs(const DevicesConfig& config, std::string* why);

}  // namespace llmq

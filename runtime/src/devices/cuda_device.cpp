// CUDA devices: enumeration, the caching allocator and the worker with its stream.
#include "cuda_device.hpp"

#include <algorithm>

#include "device_worker.hpp"
#include "llmq/kernels/cuda.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/log.hpp"

namespace llmq {

namespace {

thread_local CudaDevice* current_device = nullptr;

std::string cuda_error(const char* call, cudaError_t e) {
    return std::string(call) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

}  // namespace

Expected<std::vector<CudaDeviceSpec>> cuda_device_specs(const DevicesConfig& config, std::string* why) {
    std::vector<CudaDeviceSpec> out;
    if (config.cuda.mode == CudaSelection::Mode::none) {
        if (why) *why = "[devices] cuda = \"none\"";
        return out;
    }
    std::string reason;
    const int visible = kernels::cuda::visible_device_count(&reason);
    if (visible <= 0) {
        if (why) *why = reason;
        return out;
    }
    std::vector<int> ordinals;
    if (config.cuda.mode == CudaSelection::Mode::list) {
        for (int o : config.cuda.ordinals) {
            if (o >= visible)
                return invalid_argument("[devices] cuda lists GPU " + std::to_string(o) + " but " +
                                        std::to_string(visible) +
                                        " GPU(s) are visible (CUDA_VISIBLE_DEVICES applies; ordinals "
                                        "count from 0)");
            ordinals.push_back(o);
        }
    } else {
        for (int o = 0; o < visible; ++o) ordinals.push_back(o);
    }
    const int split = std::max(1, config.cuda_devices_per_gpu);
    for (int ordinal : ordinals) {
        cudaDeviceProp props{};
        if (cudaError_t e = cudaGetDeviceProperties(&props, ordinal); e != cudaSuccess)
            return unavailable("cuda:" + std::to_string(ordinal) + ": " + cuda_error("cudaGetDeviceProperties", e));
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaError_t e = cudaSetDevice(ordinal); e != cudaSuccess)
            return unavailable("cuda:" + std::to_string(ordinal) + ": " + cuda_error("cudaSetDevice", e));
        if (cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes); e != cudaSuccess)
            return unavailable("cuda:" + std::to_string(ordinal) + ": " + cuda_error("cudaMemGetInfo", e));
        // Plan against the configured share, but never more than what is free now: another
        // process's memory is not ours to plan with.
        const uint64_t free_share = free_bytes / split;
        uint64_t capacity = free_share;
        if (config.cuda_memory_limit > 0 && config.cuda_memory_limit < free_share) capacity = config.cuda_memory_limit;
        if (config.cuda_memory_limit > free_share)
            log::warn("cuda:" + std::to_string(ordinal) + ": [devices] cuda_memory_limit = " +
                      format_bytes(config.cuda_memory_limit) + " is more than the " + format_bytes(free_share) +
                      " free per device; planning with the free memory");
        log::info("cuda:" + std::to_string(ordinal) + " " + props.name + " (sm_" + std::to_string(props.major) +
                  std::to_string(props.minor) + "): " + format_bytes(total_bytes) + ", " +
                  format_bytes(free_bytes) + " free; " + std::to_string(split) + " device(s) of " +
                  format_bytes(capacity));
        for (int l = 0; l < split; ++l) {
            CudaDeviceSpec s;
            s.ordinal = ordinal;
            s.logical = l;
            s.logical_count = split;
            s.gpu_name = props.name;
            s.gpu_total = total_bytes;
            s.gpu_free = free_bytes;
            s.communicator = config.cuda_communicator;
            s.info.kind = DeviceKind::cuda;
            s.info.index = ordinal;
            s.info.name = "cuda:" + std::to_string(ordinal) + (split > 1 ? "." + std::to_string(l) : "");
            s.info.memory_capacity = capacity;
            s.info.threads = 1;
            out.push_back(std::move(s));
        }
    }
    return out;
}

CudaDevice::CudaDevice(const CudaDeviceSpec& spec) : spec_(spec) {}

Expected<std::unique_ptr<CudaDevice>> CudaDevice::create(const CudaDeviceSpec& spec) {
    std::unique_ptr<CudaDevice> d(new CudaDevice(spec));
    cudaError_t failed = cudaSuccess;
    CudaDevice* self = d.get();
    d->worker_ = std::make_unique<DeviceWorker>([self, &failed] {
        current_device = self;
        failed = cudaSetDevice(self->spec_.ordinal);
        if (failed == cudaSuccess) failed = cudaStreamCreateWithFlags(&self->stream_, cudaStreamNonBlocking);
    });
    if (failed != cudaSuccess)
        return unavailable(spec.info.name + ": " + cuda_error("creating the device's stream", failed));
    return d;
}

CudaDevice::~CudaDevice() {
    if (worker_) {
        if (stream_) cudaStreamSynchronize(stream_);
        worker_.reset();
    }
    make_current();
    for (auto& [p, block] : live_) cudaFree(block.base);
    for (auto& [bytes, p] : cached_) cudaFree(p);
    if (stream_) cudaStreamDestroy(stream_);
}

CudaDevice* CudaDevice::current() { return current_device; }

void CudaDevice::make_current() const { cudaSetDevice(spec_.ordinal); }

// Small blocks round to 512 bytes, larger ones to 2 MiB, so that freed blocks of a size class
// serve later requests of about that size (workspace, staging, plugin scratch).
uint64_t CudaDevice::rounded_size(uint64_t bytes) {
    const uint64_t unit = bytes < (1ull << 20) ? 512 : (2ull << 20);
    return (std::max<uint64_t>(bytes, 1) + unit - 1) / unit * unit;
}

void CudaDevice::release_cache_locked() {
    for (auto& [bytes, p] : cached_) {
        cudaFree(p);
        reserved_ -= bytes;
    }
    cached_.clear();
}

void* CudaDevice::allocate(uint64_t bytes, uint64_t alignment, std::string* why) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 20)) {
        if (why) *why = info().name + ": alignment " + std::to_string(alignment) + " is not a power of two up to 1 MiB";
        return nullptr;
    }
    const uint64_t extra = alignment > 256 ? alignment - 256 : 0;
    const uint64_t size = rounded_size(bytes + extra);
    auto hand_out = [&](void* base) {
        const uintptr_t at = (reinterpret_cast<uintptr_t>(base) + alignment - 1) / alignment * alignment;
        void* p = reinterpret_cast<void*>(at);
        live_.emplace(p, Block{base, size});
        in_use_.fetch_add(size);
        return p;
    };
    std::lock_guard lock(alloc_mutex_);
    if (auto it = cached_.find(size); it != cached_.end()) {
        void* base = it->second;
        cached_.erase(it);
        return hand_out(base);
    }
    const uint64_t capacity = info().memory_capacity;
    if (size > capacity || reserved_ > capacity - size) release_cache_locked();
    if (size > capacity || reserved_ > capacity - size) {
        if (why)
            *why = info().name + ": cannot allocate " + format_bytes(size) + "; " + format_bytes(in_use_.load()) +
                   " of " + format_bytes(capacity) + " in use";
        return nullptr;
    }
    make_current();
    void* base = nullptr;
    cudaError_t e = cudaMalloc(&base, size);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        release_cache_locked();
        e = cudaMalloc(&base, size);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (why)
            *why = info().name + ": " + cuda_error("cudaMalloc", e) + " for " + format_bytes(size) + " (" +
                   format_bytes(in_use_.load()) + " in use by llmq on this device)";
        return nullptr;
    }
    reserved_ += size;
    return hand_out(base);
}

void CudaDevice::deallocate(void* pointer) {
    if (!pointer) return;
    std::lock_guard lock(alloc_mutex_);
    auto it = live_.find(pointer);
    if (it == live_.end()) return;
    // Work queued on this device's stream may still use the block; a later allocation is
    // used on the same stream after it, so handing the block out again is stream-ordered.
    cached_.emplace(it->second.size, it->second.base);
    in_use_.fetch_sub(it->second.size);
    deallocations_.fetch_add(1);
    live_.erase(it);
}

uint64_t CudaDevice::memory_reserved() const {
    std::lock_guard lock(alloc_mutex_);
    return reserved_;
}

void CudaDevice::copy_from_host(void* dst, const void* src, uint64_t bytes) {
    make_current();
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_);
    cudaStreamSynchronize(stream_);
}

void CudaDevice::copy_to_host(void* dst, const void* src, uint64_t bytes) {
    make_current();
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_);
    cudaStreamSynchronize(stream_);
}

void CudaDevice::parallel_for(int64_t n, llmq_range_fn fn, void* arg) {
    if (n > 0) fn(arg, 0, n);
}

void CudaDevice::synchronize() { cudaStreamSynchronize(stream_); }

void CudaDevice::post(std::function<void()> task) { worker_->post(std::move(task)); }

}  // namespace llmq

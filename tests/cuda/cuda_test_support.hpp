// What the GPU tests share: a host table for cuda:0 (its own stream, cudaMalloc-backed
// alloc), device buffers, the element conversions of the test data (through the CPU kernels'
// exact ones), and poisoning (every output buffer is filled with 0xff bytes, a NaN in every
// float type, before each run, so a result the kernel never wrote cannot pass).
#pragma once

#include <cuda_runtime_api.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq_plugin.h"

namespace llmq::cuda_testing {

namespace k = llmq::kernels;

#define LLMQ_CUDA_CHECK(call)                                                                   \
    do {                                                                                        \
        const cudaError_t llmq_status_ = (call);                                                \
        REQUIRE_MESSAGE(llmq_status_ == cudaSuccess, #call, ": ", cudaGetErrorString(llmq_status_)); \
    } while (0)

struct cuda_host {
    llmq_host table{};
    cudaStream_t stream = nullptr;
    std::mutex mutex;
    std::vector<std::string> log_lines;
    std::string config;
    int allocations = 0;

    explicit cuda_host(std::string toml = "") : config(std::move(toml)) {
        LLMQ_CUDA_CHECK(cudaSetDevice(0));
        LLMQ_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        table.struct_size = sizeof(llmq_host);
        table.abi_version = LLMQ_PLUGIN_ABI_VERSION;
        table.host_context = this;
        table.log = [](void* self, int32_t, const char* message) {
            auto* host = static_cast<cuda_host*>(self);
            std::lock_guard lock(host->mutex);
            host->log_lines.emplace_back(message);
        };
        table.alloc = [](void* self, size_t bytes, size_t) -> void* {
            void* p = nullptr;
            if (cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
            ++static_cast<cuda_host*>(self)->allocations;
            return p;
        };
        // cudaFree waits for the device, which is what "reused only after the stream has
        // passed" needs in a test host.
        table.free = [](void* self, void* p) {
            cudaFree(p);
            --static_cast<cuda_host*>(self)->allocations;
        };
        table.parallel_for = [](void*, int64_t n, llmq_range_fn fn, void* arg) { fn(arg, 0, n); };
        table.device_type = LLMQ_BACKEND_CUDA;
        table.device_index = 0;
        table.num_threads = 1;
        table.stream = stream;
        table.config_toml = config.c_str();
    }
    ~cuda_host() {
        if (stream != nullptr) cudaStreamDestroy(stream);
    }
    cuda_host(const cuda_host&) = delete;
    cuda_host& operator=(const cuda_host&) = delete;
    void sync() { LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream)); }
};

// A device buffer of `bytes`, freed at scope end.
struct device_buffer {
    void* data = nullptr;
    size_t bytes = 0;
    explicit device_buffer(size_t n) : bytes(n) { LLMQ_CUDA_CHECK(cudaMalloc(&data, n < 1 ? 1 : n)); }
    ~device_buffer() { cudaFree(data); }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;
    void upload(const void* host) { LLMQ_CUDA_CHECK(cudaMemcpy(data, host, bytes, cudaMemcpyHostToDevice)); }
    void download(void* host) const { LLMQ_CUDA_CHECK(cudaMemcpy(host, data, bytes, cudaMemcpyDeviceToHost)); }
    void poison() { LLMQ_CUDA_CHECK(cudaMemset(data, 0xff, bytes)); }
    template <typename T> T* as() const { return static_cast<T*>(data); }
};

inline size_t element_bytes(k::dtype t) { return t == k::dtype::f32 ? 4 : 2; }

// Rows of f32 values stored as `t` (row_bytes each), and the values as stored, widened back.
struct stored_rows {
    std::vector<uint8_t> bytes;
    std::vector<double> values;
};
inline stored_rows store_rows(k::dtype t, const std::vector<float>& source, int64_t rows, int64_t n,
                              int64_t row_bytes) {
    stored_rows out;
    out.bytes.assign(size_t(rows * row_bytes), 0);
    out.values.resize(size_t(rows * n));
    std::vector<float> back(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
        void* dst = out.bytes.data() + r * row_bytes;
        k::row_from_f32(t, source.data() + r * n, dst, n);
        k::row_to_f32(t, dst, back.data(), n);
        for (int64_t i = 0; i < n; ++i) out.values[size_t(r * n + i)] = back[size_t(i)];
    }
    return out;
}
// Widen `count` stored values of t to double.
inline std::vector<double> widen(k::dtype t, const void* data, int64_t rows, int64_t n, int64_t row_bytes) {
    std::vector<double> out(size_t(rows * n));
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
        k::row_to_f32(t, static_cast<const uint8_t*>(data) + r * row_bytes, row.data(), n);
        for (int64_t i = 0; i < n; ++i) out[size_t(r * n + i)] = row[size_t(i)];
    }
    return out;
}

// The relative rounding of one store to t (half an ulp at 1).
inline double rounding_of(k::dtype t) {
    switch (t) {
        case k::dtype::bf16: return 1.0 / 256.0;
        case k::dtype::f16: return 1.0 / 2048.0;
        default: return 1.0 / 16777216.0;
    }
}

// LLMQ_CUDA_QUICK=1 (set by scripts/gpu-check.sh under compute-sanitizer, which runs kernels
// tens of times slower): tests run a shorter list of cases.
inline bool quick_run() {
    const char* v = std::getenv("LLMQ_CUDA_QUICK");
    return v != nullptr && *v != '\0' && *v != '0';
}

inline std::vector<float> random_values(std::mt19937& rng, size_t n, float scale = 1.0f) {
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

}  // namespace llmq::cuda_testing

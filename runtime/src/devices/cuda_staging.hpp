// Host-to-device staging for a CUDA backend.
//
// StagingRing: the per-step index tables (tokens, positions, block tables, KV slots, logit
// rows) that the seam hands over as host spans. Each is copied into pinned memory and from
// there, on the device's stream, into device memory; the device copy stays valid (and the
// pinned copy untouched) until reset(), which the backend calls only after the stream has
// been synchronised. A table that does not fit the current chunk goes into a new, larger one;
// the old chunks live until reset(), which keeps one chunk of their total size.
//
// WeightUpload: weights go from the file mapping through two pinned buffers of `chunk` bytes
// to device memory, one buffer filling while the other's copy runs, so no host copy of a
// whole tensor (let alone the model) is ever made.
//
// Thread: one at a time (the ring: the device's worker; the upload: the loading thread).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

class CudaDevice;

class StagingRing {
public:
    explicit StagingRing(CudaDevice& device) : device_(device) {}
    ~StagingRing();
    StagingRing(const StagingRing&) = delete;
    StagingRing& operator=(const StagingRing&) = delete;

    // A device copy of bytes [host, host + bytes), 16-byte aligned; null with *error set when
    // memory runs out. Queued on the device's stream.
    const void* stage(const void* host, uint64_t bytes, std::string* error);
    // Every staged table is done with (the stream was synchronised).
    void reset();

private:
    struct Chunk {
        uint8_t* host = nullptr;  // pinned
        void* device = nullptr;
        uint64_t bytes = 0, used = 0;
    };
    bool add_chunk(uint64_t at_least, std::string* error);
    void free_chunk(Chunk& c);

    CudaDevice& device_;
    std::vector<Chunk> chunks_;
};

class WeightUpload {
public:
    explicit WeightUpload(CudaDevice& device, uint64_t chunk = 16ull << 20) : device_(device), chunk_(chunk) {}
    ~WeightUpload();
    WeightUpload(const WeightUpload&) = delete;
    WeightUpload& operator=(const WeightUpload&) = delete;

    // dst (device) = `rows` rows of `row_bytes` each, row r read at src + r * src_stride
    // (host: the file mapping). Returns when the copy is done.
    [[nodiscard]] Status rows(void* dst, const uint8_t* src, int64_t src_stride, int64_t rows, uint64_t row_bytes);
    uint64_t uploaded() const { return uploaded_; }

private:
    Status ensure_buffers();

    CudaDevice& device_;
    uint64_t chunk_;
    uint8_t* pinned_[2] = {nullptr, nullptr};
    cudaEvent_t done_[2] = {nullptr, nullptr};
    uint64_t uploaded_ = 0, next_log_ = 1ull << 30;
};

}  // namespace llmq

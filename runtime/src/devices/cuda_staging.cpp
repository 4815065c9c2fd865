#include "cuda_staging.hpp"

#include <algorithm>
#include <cstring>

#include "cuda_device.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/log.hpp"

namespace llmq {

namespace {

std::string cuda_error(const std::string& what, cudaError_t e) {
    return what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

}  // namespace

// ---- StagingRing

StagingRing::~StagingRing() {
    for (Chunk& c : chunks_) free_chunk(c);
}

void StagingRing::free_chunk(Chunk& c) {
    if (c.host) cudaFreeHost(c.host);
    device_.deallocate(c.device);
    c = Chunk{};
}

bool StagingRing::add_chunk(uint64_t at_least, std::string* error) {
    uint64_t bytes = chunks_.empty() ? (1ull << 20) : chunks_.back().bytes * 2;
    while (bytes < at_least) bytes *= 2;
    Chunk c;
    c.bytes = bytes;
    c.device = device_.allocate(bytes, 256, error);
    if (!c.device) return false;
    device_.make_current();
    void* pinned = nullptr;
    if (cudaError_t e = cudaMallocHost(&pinned, bytes); e != cudaSuccess) {
        cudaGetLastError();
        device_.deallocate(c.device);
        if (error) *error = cuda_error(device_.info().name + ": pinned staging of " + format_bytes(bytes), e);
        return false;
    }
    c.host = static_cast<uint8_t*>(pinned);
    chunks_.push_back(c);
    return true;
}

const void* StagingRing::stage(const void* host, uint64_t bytes, std::string* error) {
    const uint64_t size = (std::max<uint64_t>(bytes, 1) + 15) / 16 * 16;
    if (chunks_.empty() || chunks_.back().bytes - chunks_.back().used < size)
        if (!add_chunk(size, error)) return nullptr;
    Chunk& c = chunks_.back();
    uint8_t* pinned = c.host + c.used;
    void* on_device = static_cast<uint8_t*>(c.device) + c.used;
    c.used += size;
    if (bytes > 0) {
        std::memcpy(pinned, host, bytes);
        if (cudaError_t e = cudaMemcpyAsync(on_device, pinned, bytes, cudaMemcpyHostToDevice, device_.cuda_stream());
            e != cudaSuccess) {
            if (error) *error = cuda_error(device_.info().name + ": staging an index table", e);
            return nullptr;
        }
    }
    return on_device;
}

void StagingRing::reset() {
    if (chunks_.size() > 1) {
        uint64_t total = 0;
        for (Chunk& c : chunks_) {
            total += c.bytes;
            free_chunk(c);
        }
        chunks_.clear();
        std::string ignored;
        (void)add_chunk(total, &ignored);  // on failure the next stage() tries again
    }
    for (Chunk& c : chunks_) c.used = 0;
}

// ---- WeightUpload

WeightUpload::~WeightUpload() {
    for (int i = 0; i < 2; ++i) {
        if (done_[i]) {
            cudaEventSynchronize(done_[i]);
            cudaEventDestroy(done_[i]);
        }
        if (pinned_[i]) cudaFreeHost(pinned_[i]);
    }
}

Status WeightUpload::ensure_buffers() {
    if (pinned_[0]) return {};
    device_.make_current();
    for (int i = 0; i < 2; ++i) {
        void* pinned = nullptr;
        if (cudaError_t e = cudaMallocHost(&pinned, chunk_); e != cudaSuccess) {
            cudaGetLastError();
            return out_of_memory(cuda_error(device_.info().name + ": pinned upload buffer of " + format_bytes(chunk_), e));
        }
        pinned_[i] = static_cast<uint8_t*>(pinned);
        if (cudaError_t e = cudaEventCreateWithFlags(&done_[i], cudaEventDisableTiming); e != cudaSuccess)
            return unavailable(cuda_error(device_.info().name + ": cudaEventCreate", e));
    }
    return {};
}

Status WeightUpload::rows(void* dst, const uint8_t* src, int64_t src_stride, int64_t rows, uint64_t row_bytes) {
    LLMQ_TRY(ensure_buffers());
    device_.make_current();
    cudaStream_t stream = device_.cuda_stream();
    const uint64_t total = static_cast<uint64_t>(rows) * row_bytes;
    const bool packed = static_cast<uint64_t>(src_stride) == row_bytes;
    uint8_t* out = static_cast<uint8_t*>(dst);
    // Whole rows per chunk where a row fits; a longer row goes in row-sized pieces.
    const uint64_t rows_per_chunk = row_bytes <= chunk_ ? chunk_ / row_bytes : 0;
    uint64_t done = 0;
    int buffer = 0;
    int64_t row = 0;
    uint64_t in_row = 0;  // bytes of `row` already sent (long rows only)
    while (done < total) {
        // The buffer's previous copy must have finished before it is refilled.
        if (cudaError_t e = cudaEventSynchronize(done_[buffer]); e != cudaSuccess)
            return unavailable(cuda_error(device_.info().name + ": weight upload", e));
        uint8_t* pinned = pinned_[buffer];
        uint64_t bytes = 0;
        if (rows_per_chunk > 0) {
            const int64_t n = std::min<int64_t>(static_cast<int64_t>(rows_per_chunk), rows - row);
            if (packed) {
                std::memcpy(pinned, src + row * src_stride, n * row_bytes);
            } else {
                for (int64_t r = 0; r < n; ++r)
                    std::memcpy(pinned + r * row_bytes, src + (row + r) * src_stride, row_bytes);
            }
            bytes = n * row_bytes;
            row += n;
        } else {
            bytes = std::min<uint64_t>(chunk_, row_bytes - in_row);
            std::memcpy(pinned, src + row * src_stride + in_row, bytes);
            in_row += bytes;
            if (in_row == row_bytes) {
                in_row = 0;
                ++row;
            }
        }
        if (cudaError_t e = cudaMemcpyAsync(out + done, pinned, bytes, cudaMemcpyHostToDevice, stream);
            e != cudaSuccess)
            return unavailable(cuda_error(device_.info().name + ": weight upload", e));
        if (cudaError_t e = cudaEventRecord(done_[buffer], stream); e != cudaSuccess)
            return unavailable(cuda_error(device_.info().name + ": weight upload", e));
        done += bytes;
        buffer ^= 1;
    }
    if (cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess)
        return unavailable(cuda_error(device_.info().name + ": weight upload", e));
    uploaded_ += total;
    if (uploaded_ >= next_log_) {
        log::info(device_.info().name + ": " + format_bytes(uploaded_) + " of weights uploaded");
        while (next_log_ <= uploaded_) next_log_ += 1ull << 30;
    }
    return {};
}

}  // namespace llmq

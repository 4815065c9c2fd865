// The device-memory communicator (cuda_communicators.hpp). Each call: synchronise the
// caller's stream (its buffer is final), meet the other ranks on the host, copy on the
// caller's stream, synchronise, meet again (nobody overwrites a buffer another rank still
// reads). Pointers travel through the host group as bits.
#include <cstring>
#include <vector>

#include "cuda_communicators.hpp"
#include "cuda_device.hpp"
#include "llmq/kernels/cuda.hpp"

namespace llmq {

namespace {

struct PointerMessage {
    uint64_t address;
    uint64_t bytes;
};

class DeviceMemoryCommunicator final : public Communicator {
public:
    DeviceMemoryCommunicator(std::unique_ptr<Communicator> host, std::unique_ptr<Communicator> acks)
        : host_(std::move(host)), acks_(std::move(acks)) {}
    ~DeviceMemoryCommunicator() override {
        if (scratch_ && device_) device_->deallocate(scratch_);
    }

    int rank() const override { return host_->rank(); }
    int size() const override { return host_->size(); }
    std::string kind() const override { return "device-memory"; }

    Status all_reduce_sum(float* data, size_t count) override {
        if (size() == 1 || count == 0) return {};
        LLMQ_TRY(begin("all_reduce_sum"));
        std::vector<uint64_t> peers;
        LLMQ_TRY(exchange(data, peers));
        float* rows = scratch(static_cast<uint64_t>(size()) * count * sizeof(float));
        if (!rows) return out_of_memory(device_->info().name + ": all_reduce_sum scratch: " + why_);
        for (int r = 0; r < size(); ++r)
            LLMQ_TRY(copy(rows + r * count, peers[r], count * sizeof(float)));
        LLMQ_TRY(finish("all_reduce_sum"));
        LLMQ_TRY(host_->barrier());
        const int64_t n = static_cast<int64_t>(count);
        return launched(kernels::cuda::sum_rows_in_order(rows, size(), n, data, n, device_->cuda_stream()),
                        "all_reduce_sum");
    }

    Status all_gather(const float* send, size_t count, float* recv) override {
        LLMQ_TRY(begin("all_gather"));
        std::vector<uint64_t> peers;
        LLMQ_TRY(exchange(send, peers));
        for (int r = 0; r < size(); ++r) LLMQ_TRY(copy(recv + r * count, peers[r], count * sizeof(float)));
        LLMQ_TRY(finish("all_gather"));
        return host_->barrier();
    }

    Status broadcast(void* data, size_t bytes, int root) override {
        if (root < 0 || root >= size()) return invalid_argument("broadcast: no rank " + std::to_string(root));
        LLMQ_TRY(begin("broadcast"));
        std::vector<uint64_t> peers;
        LLMQ_TRY(exchange(data, peers));
        if (rank() != root) LLMQ_TRY(copy(data, peers[root], bytes));
        LLMQ_TRY(finish("broadcast"));
        return host_->barrier();
    }

    // The receiver copies from the sender's buffer; the sender waits for its acknowledgement
    // before it may overwrite the buffer.
    Status send(const void* data, size_t bytes, int peer) override {
        if (peer < 0 || peer >= size()) return invalid_argument("send: no rank " + std::to_string(peer));
        LLMQ_TRY(begin("send"));
        const PointerMessage m{reinterpret_cast<uint64_t>(data), bytes};
        LLMQ_TRY(host_->send(&m, sizeof m, peer));
        uint8_t ack = 0;
        return acks_->recv(&ack, 1, peer);
    }

    Status recv(void* data, size_t bytes, int peer) override {
        if (peer < 0 || peer >= size()) return invalid_argument("recv: no rank " + std::to_string(peer));
        LLMQ_TRY(begin("recv"));
        PointerMessage m{};
        LLMQ_TRY(host_->recv(&m, sizeof m, peer));
        if (m.bytes != bytes)
            return internal_error("device-memory recv from rank " + std::to_string(peer) + ": expected " +
                                  std::to_string(bytes) + " bytes, the sender sent " + std::to_string(m.bytes));
        LLMQ_TRY(copy(data, m.address, bytes));
        LLMQ_TRY(finish("recv"));
        const uint8_t ack = 1;
        return acks_->send(&ack, 1, peer);
    }

    Status barrier() override { return host_->barrier(); }

private:
    // The caller's device, and its buffer final on the stream.
    Status begin(const char* what) {
        CudaDevice* d = CudaDevice::current();
        if (!d) return internal_error(std::string("device-memory ") + what + ": called off a CUDA device's worker");
        if (device_ && device_ != d)
            return internal_error(std::string("device-memory ") + what + ": rank " + std::to_string(rank()) +
                                  " moved from " + device_->info().name + " to " + d->info().name);
        device_ = d;
        return finish(what);
    }
    Status finish(const char* what) {
        return launched(cudaStreamSynchronize(device_->cuda_stream()), what);
    }
    Status launched(cudaError_t e, const char* what) {
        if (e == cudaSuccess) return {};
        return unavailable(device_->info().name + ": device-memory " + what + ": " + cudaGetErrorName(e) + " (" +
                           cudaGetErrorString(e) + ")");
    }
    // Every rank's pointer, through the host group: two floats' worth of bits per rank.
    Status exchange(const void* mine, std::vector<uint64_t>& all) {
        const uint64_t address = reinterpret_cast<uint64_t>(mine);
        float packed[2];
        std::memcpy(packed, &address, sizeof address);
        std::vector<float> gathered(2 * static_cast<size_t>(size()));
        LLMQ_TRY(host_->all_gather(packed, 2, gathered.data()));
        all.resize(size());
        std::memcpy(all.data(), gathered.data(), all.size() * sizeof(uint64_t));
        return {};
    }
    Status copy(void* dst, uint64_t src, size_t bytes) {
        if (bytes == 0) return {};
        return launched(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(src), bytes, cudaMemcpyDefault,
                                        device_->cuda_stream()),
                        "copy");
    }
    float* scratch(uint64_t bytes) {
        if (scratch_bytes_ < bytes) {
            if (scratch_) device_->deallocate(scratch_);
            scratch_bytes_ = 0;
            scratch_ = static_cast<float*>(device_->allocate(bytes, 256, &why_));
            if (scratch_) scratch_bytes_ = bytes;
        }
        return scratch_;
    }

    std::unique_ptr<Communicator> host_, acks_;
    CudaDevice* device_ = nullptr;
    float* scratch_ = nullptr;  // [size][count] copies of every rank's buffer
    uint64_t scratch_bytes_ = 0;
    std::string why_;
};

class DeviceMemoryGroup final : public CommunicatorGroup {
public:
    DeviceMemoryGroup(int size, std::chrono::milliseconds timeout) : host_(size, timeout), acks_(size, timeout) {}
    std::unique_ptr<Communicator> communicator(int rank) override {
        return std::make_unique<DeviceMemoryCommunicator>(host_.communicator(rank), acks_.communicator(rank));
    }
    int size() const override { return host_.size(); }
    void abort() override {
        host_.abort();
        acks_.abort();
    }
    void reset() override {
        host_.reset();
        acks_.reset();
    }

private:
    InProcessGroup host_, acks_;  // rendezvous and pointers; the receivers' acknowledgements
};

}  // namespace

std::unique_ptr<CommunicatorGroup> make_device_memory_group(int size, std::chrono::milliseconds timeout) {
    return std::make_unique<DeviceMemoryGroup>(size, timeout);
}

}  // namespace llmq

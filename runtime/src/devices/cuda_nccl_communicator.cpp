// The NCCL communicator (cuda_communicators.hpp): one process, one rank per GPU. Each rank's
// communicator joins at its first call, on its device's worker (non-blocking init, so that
// joining is bounded too); every call is queued on the rank's stream and polled until the
// stream has passed it, NCCL reports an error, the group is aborted or the timeout passes,
// and in the last three cases the communicator is aborted (ncclCommAbort) so that no rank
// stays blocked inside NCCL.
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "cuda_communicators.hpp"
#include "cuda_device.hpp"

namespace llmq {

namespace {

struct NcclState {
    int size = 1;
    std::chrono::milliseconds timeout{60000};
    std::mutex mutex;
    ncclUniqueId id{};
    bool id_ok = false;
    std::string id_error;
    std::atomic<bool> aborted{false};

    void new_id() {
        std::lock_guard lock(mutex);
        const ncclResult_t r = ncclGetUniqueId(&id);
        id_ok = r == ncclSuccess;
        id_error = id_ok ? "" : std::string("ncclGetUniqueId: ") + ncclGetErrorString(r);
    }
};

class NcclCommunicator final : public Communicator {
public:
    NcclCommunicator(std::shared_ptr<NcclState> state, int rank) : state_(std::move(state)), rank_(rank) {
        std::lock_guard lock(state_->mutex);
        id_ = state_->id;
        id_ok_ = state_->id_ok;
        id_error_ = state_->id_error;
    }
    ~NcclCommunicator() override {
        if (comm_) ncclCommAbort(comm_);  // every call was waited for; nothing is left to flush
        if (one_ && device_) device_->deallocate(one_);
    }

    int rank() const override { return rank_; }
    int size() const override { return state_->size; }
    std::string kind() const override { return "nccl"; }

    Status all_reduce_sum(float* data, size_t count) override {
        LLMQ_TRY(join("all_reduce_sum"));
        return finish(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream()), "all_reduce_sum");
    }
    Status all_gather(const float* send, size_t count, float* recv) override {
        LLMQ_TRY(join("all_gather"));
        return finish(ncclAllGather(send, recv, count, ncclFloat32, comm_, stream()), "all_gather");
    }
    Status broadcast(void* data, size_t bytes, int root) override {
        if (root < 0 || root >= size()) return invalid_argument("broadcast: no rank " + std::to_string(root));
        LLMQ_TRY(join("broadcast"));
        return finish(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream()), "broadcast");
    }
    Status send(const void* data, size_t bytes, int peer) override {
        if (peer < 0 || peer >= size()) return invalid_argument("send: no rank " + std::to_string(peer));
        LLMQ_TRY(join("send"));
        return finish(ncclSend(data, bytes, ncclUint8, peer, comm_, stream()), "send");
    }
    Status recv(void* data, size_t bytes, int peer) override {
        if (peer < 0 || peer >= size()) return invalid_argument("recv: no rank " + std::to_string(peer));
        LLMQ_TRY(join("recv"));
        return finish(ncclRecv(data, bytes, ncclUint8, peer, comm_, stream()), "recv");
    }
    Status barrier() override {
        LLMQ_TRY(join("barrier"));
        if (!one_) {
            std::string why;
            one_ = static_cast<float*>(device_->allocate(sizeof(float), 256, &why));
            if (!one_) return out_of_memory("nccl barrier: " + why);
        }
        return finish(ncclAllReduce(one_, one_, 1, ncclFloat32, ncclSum, comm_, stream()), "barrier");
    }

private:
    cudaStream_t stream() const { return device_->cuda_stream(); }

    Status fail(const std::string& what) {
        if (comm_) ncclCommAbort(comm_);
        comm_ = nullptr;
        broken_ = true;
        return unavailable("nccl rank " + std::to_string(rank_) + (device_ ? " on " + device_->info().name : "") +
                           ": " + what + "; the communicator was aborted");
    }

    // The rank's communicator, made on first use on the rank's worker.
    Status join(const char* what) {
        if (broken_) return unavailable(std::string("nccl ") + what + ": this rank's communicator was aborted earlier");
        if (comm_) return {};
        device_ = CudaDevice::current();
        if (!device_) return internal_error(std::string("nccl ") + what + ": called off a CUDA device's worker");
        if (!id_ok_) return unavailable("nccl: " + id_error_);
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;
        const ncclResult_t r = ncclCommInitRankConfig(&comm_, size(), id_, rank_, &config);
        if (r != ncclSuccess && r != ncclInProgress) return fail(std::string("ncclCommInitRankConfig: ") + ncclGetErrorString(r));
        return wait("joining the group", false);
    }

    Status finish(ncclResult_t queued, const char* what) {
        if (queued != ncclSuccess && queued != ncclInProgress) return fail(std::string(what) + ": " + ncclGetErrorString(queued));
        return wait(what, true);
    }

    // Until NCCL is done with the call (and, for collectives, the stream has passed it).
    Status wait(const char* what, bool on_stream) {
        const auto deadline = std::chrono::steady_clock::now() + state_->timeout;
        for (int spins = 0;; ++spins) {
            ncclResult_t state = ncclSuccess;
            if (ncclResult_t r = ncclCommGetAsyncError(comm_, &state); r != ncclSuccess) state = r;
            if (state != ncclSuccess && state != ncclInProgress) return fail(std::string(what) + ": " + ncclGetErrorString(state));
            if (state == ncclSuccess) {
                if (!on_stream) return {};
                const cudaError_t q = cudaStreamQuery(stream());
                if (q == cudaSuccess) return {};
                if (q != cudaErrorNotReady)
                    return fail(std::string(what) + ": " + cudaGetErrorName(q) + " (" + cudaGetErrorString(q) + ")");
            }
            if (state_->aborted.load()) return fail(std::string(what) + ": the group was aborted");
            if (std::chrono::steady_clock::now() > deadline)
                return fail(std::string(what) + ": not done within " + std::to_string(state_->timeout.count()) + " ms");
            if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }

    std::shared_ptr<NcclState> state_;
    int rank_;
    ncclUniqueId id_{};
    bool id_ok_ = false, broken_ = false;
    std::string id_error_;
    ncclComm_t comm_ = nullptr;
    CudaDevice* device_ = nullptr;
    float* one_ = nullptr;  // the barrier's one float
};

class NcclGroup final : public CommunicatorGroup {
public:
    NcclGroup(int size, std::chrono::milliseconds timeout) : state_(std::make_shared<NcclState>()) {
        state_->size = size < 1 ? 1 : size;
        state_->timeout = timeout;
        state_->new_id();
    }
    std::unique_ptr<Communicator> communicator(int rank) override {
        return std::make_unique<NcclCommunicator>(state_, rank);
    }
    int size() const override { return state_->size; }
    void abort() override { state_->aborted.store(true); }
    // The old communicators are gone (the executor drops them first); new ones join afresh.
    void reset() override {
        state_->aborted.store(false);
        state_->new_id();
    }

private:
    std::shared_ptr<NcclState> state_;
};

}  // namespace

bool nccl_built() { return true; }

std::unique_ptr<CommunicatorGroup> make_nccl_group(int size, std::chrono::milliseconds timeout) {
    return std::make_unique<NcclGroup>(size, timeout);
}

}  // namespace llmq

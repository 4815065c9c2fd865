// Communicators: the collectives and point-to-point transfers that tensor and pipeline
// parallelism need, behind one interface.
//
// Implementations: in-process (CPU devices of one process; threads meet in shared memory),
// MPI (ranks in several processes or hosts), and NCCL for CUDA devices (a later backend).
// Buffers are in the memory of the calling rank's device (host memory for CPU devices,
// device memory for NCCL). Every call blocks until done or until the group's timeout; a
// timeout or a peer that left is an `unavailable` Status, never a hang.
//
// Results are deterministic: all_reduce_sum adds contributions in rank order, so every rank
// gets bit-identical values whatever the timing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "llmq/runtime/status.hpp"

namespace llmq {

class Communicator {
public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual std::string kind() const = 0;  // "in-process", "mpi", "nccl"

    // data[i] = sum over ranks of data[i]; in place. Thread: the rank's device worker.
    [[nodiscard]] virtual Status all_reduce_sum(float* data, size_t count) = 0;
    // recv[r * count + i] = rank r's send[i].
    [[nodiscard]] virtual Status all_gather(const float* send, size_t count, float* recv) = 0;
    [[nodiscard]] virtual Status send(const void* data, size_t bytes, int peer) = 0;
    [[nodiscard]] virtual Status recv(void* data, size_t bytes, int peer) = 0;
    [[nodiscard]] virtual Status broadcast(void* data, size_t bytes, int root) = 0;
    [[nodiscard]] virtual Status barrier() = 0;
};

// A group of ranks that live in one process (a stage's tensor ranks, a tensor rank's
// pipeline stages), as a device backend makes it (Backend::local_group).
class CommunicatorGroup {
public:
    virtual ~CommunicatorGroup() = default;
    // Rank r's end, used by one thread (the rank's device worker).
    virtual std::unique_ptr<Communicator> communicator(int rank) = 0;
    virtual int size() const = 0;
    // Wake every waiting rank with an error (a rank failed mid-step); the group stays
    // broken until reset(), which the caller makes once no rank is inside a call.
    virtual void abort() = 0;
    virtual void reset() = 0;
};

// A group of `size` in-process ranks; communicator(r) is rank r's end, used by one thread.
class InProcessGroup final : public CommunicatorGroup {
public:
    explicit InProcessGroup(int size,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60));
    ~InProcessGroup() override;
    std::unique_ptr<Communicator> communicator(int rank) override;
    int size() const override;
    void abort() override;
    void reset() override;

    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace llmq

// Ranks in several processes (or hosts), launched by `mpirun`: the MPI world and MPI
// communicators behind the Communicator interface.
//
// llmqd started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE) holds one shard per process:
// world rank w is device w of the plan (stage-major, like in-process devices). Rank 0 owns
// the instance socket and the engine, and broadcasts every step to the others, which follow.
// Every wait is bounded: nonblocking MPI calls polled against a deadline, so a dead peer is
// an `unavailable` Status instead of a hang.
#pragma once

#include <chrono>
#include <memory>

#include "llmq/runtime/communicator.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

class MpiWorld {
public:
    // Was this process started by mpirun with more than one rank?
    static bool launched_by_mpirun();
    // Whether this build has MPI at all.
    static bool available();

    // MPI_Init_thread (serialized calls from one thread at a time are all llmq needs).
    static Expected<std::unique_ptr<MpiWorld>> init(int* argc, char*** argv,
                                                    std::chrono::milliseconds timeout);
    ~MpiWorld();

    int rank() const { return rank_; }
    int size() const { return size_; }
    // The whole world, and sub-communicators: ranks with the same color, ordered by key.
    std::unique_ptr<Communicator> world();
    Expected<std::unique_ptr<Communicator>> split(int color, int key);

private:
    MpiWorld() = default;
    int rank_ = 0, size_ = 1;
    std::chrono::milliseconds timeout_{60000};
};

}  // namespace llmq

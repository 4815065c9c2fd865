// MPI communicators. Built only when Open MPI was found (LLMQ_HAVE_MPI); otherwise
// MpiWorld::init says so.
#include "llmq/runtime/mpi_world.hpp"

#include <cstdlib>
#include <thread>

#ifdef LLMQ_HAVE_MPI
#include <mpi.h>
#endif

namespace llmq {

bool MpiWorld::launched_by_mpirun() {
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = std::getenv("PMI_SIZE");
    return size && std::atoi(size) > 1;
}

#ifndef LLMQ_HAVE_MPI

bool MpiWorld::available() { return false; }
Expected<std::unique_ptr<MpiWorld>> MpiWorld::init(int*, char***, std::chrono::milliseconds) {
    return unsupported("this llmq was built without MPI (install libopenmpi-dev and rebuild)");
}
MpiWorld::~MpiWorld() = default;
std::unique_ptr<Communicator> MpiWorld::world() { return nullptr; }
Expected<std::unique_ptr<Communicator>> MpiWorld::split(int, int) {
    return unsupported("built without MPI");
}

#else

bool MpiWorld::available() { return true; }

namespace {

// Wait for a nonblocking request until the deadline; a timeout cancels nothing (MPI cannot
// always cancel collectives) but reports the peer as gone.
Status wait(MPI_Request& req, std::chrono::milliseconds timeout, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int done = 0;
    for (int spins = 0;; ++spins) {
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return unavailable(std::string("MPI ") + what + " failed");
        if (done) return {};
        if (std::chrono::steady_clock::now() > deadline)
            return unavailable(std::string("MPI ") + what + ": no answer from the peers within " +
                               std::to_string(timeout.count()) + " ms");
        if (spins > 1000) std::this_thread::yield();
    }
}

class MpiCommunicator final : public Communicator {
public:
    MpiCommunicator(MPI_Comm comm, bool owned, std::chrono::milliseconds timeout)
        : comm_(comm), owned_(owned), timeout_(timeout) {
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    ~MpiCommunicator() override {
        if (owned_) MPI_Comm_free(&comm_);
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    std::string kind() const override { return "mpi"; }

    Status all_reduce_sum(float* data, size_t count) override {
        MPI_Request r;
        MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm_, &r);
        return wait(r, timeout_, "all-reduce");
    }
    Status all_gather(const float* send, size_t count, float* recv) override {
        MPI_Request r;
        MPI_Iallgather(send, static_cast<int>(count), MPI_FLOAT, recv, static_cast<int>(count),
                       MPI_FLOAT, comm_, &r);
        return wait(r, timeout_, "all-gather");
    }
    Status send(const void* data, size_t bytes, int peer) override {
        MPI_Request r;
        MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, peer, 7, comm_, &r);
        return wait(r, timeout_, "send");
    }
    Status recv(void* data, size_t bytes, int peer) override {
        MPI_Request r;
        MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE, peer, 7, comm_, &r);
        return wait(r, timeout_, "recv");
    }
    Status broadcast(void* data, size_t bytes, int root) override {
        MPI_Request r;
        MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &r);
        return wait(r, timeout_, "broadcast");
    }
    Status barrier() override {
        MPI_Request r;
        MPI_Ibarrier(comm_, &r);
        return wait(r, timeout_, "barrier");
    }

private:
    MPI_Comm comm_;
    bool owned_;
    std::chrono::milliseconds timeout_;
    int rank_ = 0, size_ = 1;
};

}  // namespace

Expected<std::unique_ptr<MpiWorld>> MpiWorld::init(int* argc, char*** argv,
                                                   std::chrono::milliseconds timeout) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return unavailable("MPI_Init_thread failed");
    if (provided < MPI_THREAD_SERIALIZED)
        return unsupported("the MPI library does not support calls from several threads "
                           "(MPI_THREAD_SERIALIZED)");
    std::unique_ptr<MpiWorld> w(new MpiWorld());
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size_);
    w->timeout_ = timeout;
    return w;
}

MpiWorld::~MpiWorld() { MPI_Finalize(); }

std::unique_ptr<Communicator> MpiWorld::world() {
    return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false, timeout_);
}

Expected<std::unique_ptr<Communicator>> MpiWorld::split(int color, int key) {
    MPI_Comm c;
    if (MPI_Comm_split(MPI_COMM_WORLD, color, key, &c) != MPI_SUCCESS)
        return unavailable("MPI_Comm_split failed");
    return std::unique_ptr<Communicator>(std::make_unique<MpiCommunicator>(c, true, timeout_));
}

#endif

}  // namespace llmq

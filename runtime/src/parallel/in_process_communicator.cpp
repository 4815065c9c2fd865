// In-process communicator: the ranks are threads of one process that meet at a barrier and
// read each other's buffers directly.
//
// all_reduce_sum: every rank publishes its buffer pointer, barrier; each rank sums its own
// slice of the index range over ranks 0..n-1 (fixed order: deterministic) into a shared
// scratch, barrier; every rank copies the scratch back, barrier (buffers may be reused).
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "llmq/runtime/communicator.hpp"

namespace llmq {

struct InProcessGroup::State {
    int size;
    std::chrono::milliseconds timeout;
    std::mutex mutex;
    std::condition_variable cv;
    // Barrier: arrivals in the current generation.
    int arrived = 0;
    uint64_t generation = 0;
    std::atomic<uint64_t> atomic_generation{0};
    bool broken = false;
    std::vector<const void*> pointers;
    std::vector<float> scratch;
    // Point-to-point mailboxes keyed by (from, to).
    std::map<std::pair<int, int>, std::deque<std::vector<uint8_t>>> mail;

    Status barrier() {
        std::unique_lock lock(mutex);
        if (broken) return unavailable("in-process collective: a peer timed out earlier");
        const uint64_t gen = generation;
        if (++arrived == size) {
            arrived = 0;
            ++generation;
            atomic_generation.store(generation, std::memory_order_release);
            cv.notify_all();
            return {};
        }
        // Spin briefly without the lock: collectives come back to back in a step.
        lock.unlock();
        for (int i = 0; i < 4000; ++i) {
            if (atomic_generation.load(std::memory_order_acquire) != gen) return {};
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
        lock.lock();
        if (!cv.wait_for(lock, timeout, [&] { return generation != gen || broken; })) {
            broken = true;
            cv.notify_all();
            return unavailable("in-process collective: peers did not arrive within " +
                               std::to_string(timeout.count()) + " ms");
        }
        if (generation == gen) return unavailable("in-process collective: a peer timed out");
        return {};
    }
};

namespace {

class InProcessCommunicator final : public Communicator {
public:
    InProcessCommunicator(std::shared_ptr<InProcessGroup::State> s, int rank)
        : s_(std::move(s)), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return s_->size; }
    std::string kind() const override { return "in-process"; }

    Status all_reduce_sum(float* data, size_t count) override {
        if (s_->size == 1) return {};
        if (rank_ == 0) {
            std::lock_guard lock(s_->mutex);
            if (s_->scratch.size() < count) s_->scratch.resize(count);
        }
        s_->pointers[rank_] = data;
        LLMQ_TRY(s_->barrier());
        const size_t begin = count * rank_ / s_->size;
        const size_t end = count * (rank_ + 1) / s_->size;
        float* out = s_->scratch.data();
        for (size_t i = begin; i < end; ++i) {
            float acc = static_cast<const float*>(s_->pointers[0])[i];
            for (int r = 1; r < s_->size; ++r) acc += static_cast<const float*>(s_->pointers[r])[i];
            out[i] = acc;
        }
        LLMQ_TRY(s_->barrier());
        std::memcpy(data, out, count * sizeof(float));
        return s_->barrier();
    }

    Status all_gather(const float* send, size_t count, float* recv) override {
        s_->pointers[rank_] = send;
        LLMQ_TRY(s_->barrier());
        for (int r = 0; r < s_->size; ++r)
            std::memcpy(recv + r * count, s_->pointers[r], count * sizeof(float));
        return s_->barrier();
    }

    Status broadcast(void* data, size_t bytes, int root) override {
        if (rank_ == root) s_->pointers[rank_] = data;
        LLMQ_TRY(s_->barrier());
        if (rank_ != root) std::memcpy(data, s_->pointers[root], bytes);
        return s_->barrier();
    }

    Status send(const void* data, size_t bytes, int peer) override {
        if (peer < 0 || peer >= s_->size) return invalid_argument("send: no rank " + std::to_string(peer));
        std::vector<uint8_t> copy(static_cast<const uint8_t*>(data),
                                  static_cast<const uint8_t*>(data) + bytes);
        {
            std::lock_guard lock(s_->mutex);
            s_->mail[{rank_, peer}].push_back(std::move(copy));
        }
        s_->cv.notify_all();
        return {};
    }

    Status recv(void* data, size_t bytes, int peer) override {
        if (peer < 0 || peer >= s_->size) return invalid_argument("recv: no rank " + std::to_string(peer));
        std::unique_lock lock(s_->mutex);
        auto& box = s_->mail[{peer, rank_}];
        if (!s_->cv.wait_for(lock, s_->timeout, [&] { return !box.empty() || s_->broken; }) ||
            box.empty())
            return unavailable("in-process recv from rank " + std::to_string(peer) +
                               ": nothing arrived within " + std::to_string(s_->timeout.count()) + " ms");
        auto msg = std::move(box.front());
        box.pop_front();
        if (msg.size() != bytes)
            return internal_error("in-process recv: expected " + std::to_string(bytes) +
                                  " bytes, got " + std::to_string(msg.size()));
        std::memcpy(data, msg.data(), bytes);
        return {};
    }

    Status barrier() override { return s_->barrier(); }

private:
    std::shared_ptr<InProcessGroup::State> s_;
    int rank_;
};

}  // namespace

InProcessGroup::InProcessGroup(int size, std::chrono::milliseconds timeout)
    : state_(std::make_shared<State>()) {
    state_->size = size < 1 ? 1 : size;
    state_->timeout = timeout;
    state_->pointers.assign(state_->size, nullptr);
}
InProcessGroup::~InProcessGroup() = default;
int InProcessGroup::size() const { return state_->size; }
void InProcessGroup::abort() {
    std::lock_guard lock(state_->mutex);
    state_->broken = true;
    state_->cv.notify_all();
}
void InProcessGroup::reset() {
    std::lock_guard lock(state_->mutex);
    state_->broken = false;
    state_->arrived = 0;
    state_->mail.clear();
}
std::unique_ptr<Communicator> InProcessGroup::communicator(int rank) {
    return std::make_unique<InProcessCommunicator>(state_, rank);
}

}  // namespace llmq

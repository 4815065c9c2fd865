// A fork-join pool for one CPU device: the calling thread plus (threads - 1) helpers, each
// optionally pinned to one core. parallel_for splits [0, n) into one contiguous range per
// thread, so a GEMM over N gives each core its own run of weight rows, and the result never
// depends on which thread ran which range.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmq {

class ThreadPool {
public:
    using RangeFn = void (*)(void* arg, int64_t begin, int64_t end);

    // cores: the CPU ids this pool's threads are pinned to (empty: not pinned);
    // threads >= 1.
    ThreadPool(int threads, std::vector<int> cores = {});
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return threads_; }

    // Run fn over [0, n) and return when every range is done. Only one thread may call
    // parallel_for at a time (the device's worker); helpers spin briefly, then sleep.
    void parallel_for(int64_t n, RangeFn fn, void* arg);

    template <typename F>
    void parallel_for(int64_t n, F&& f) {
        parallel_for(
            n, [](void* a, int64_t b, int64_t e) { (*static_cast<F*>(a))(b, e); }, &f);
    }

private:
    void helper_main(int index);
    void run_share(int index);

    int threads_;
    std::vector<std::thread> helpers_;
    std::vector<int> cores_;

    // One job at a time; generation_ tells helpers a new one is there.
    RangeFn fn_ = nullptr;
    void* arg_ = nullptr;
    int64_t n_ = 0;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
};

}  // namespace llmq

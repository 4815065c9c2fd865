#include "llmq/runtime/thread_pool.hpp"

#include <pthread.h>
#include <sched.h>

namespace llmq {

namespace {

void pin_to_core(int core) {
    if (core < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    // Best effort: a container may forbid it; the pool works unpinned.
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads, std::vector<int> cores)
    : threads_(threads < 1 ? 1 : threads), cores_(std::move(cores)) {
    helpers_.reserve(threads_ - 1);
    for (int i = 1; i < threads_; ++i) helpers_.emplace_back([this, i] { helper_main(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : helpers_) t.join();
}

void ThreadPool::run_share(int index) {
    // Range i of threads_ equal parts.
    const int64_t n = n_;
    const int64_t begin = n * index / threads_;
    const int64_t end = n * (index + 1) / threads_;
    if (begin < end) fn_(arg_, begin, end);
}

void ThreadPool::parallel_for(int64_t n, RangeFn fn, void* arg) {
    if (n <= 0) return;
    if (threads_ == 1 || n == 1) {
        fn(arg, 0, n);
        return;
    }
    fn_ = fn;
    arg_ = arg;
    n_ = n;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    {
        std::lock_guard lock(mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_share(0);
    // Helpers finish within microseconds of us on an even split; spin, then yield.
    int spins = 0;
    while (pending_.load(std::memory_order_acquire) != 0) {
        if (++spins < 20000) cpu_relax();
        else std::this_thread::yield();
    }
}

void ThreadPool::helper_main(int index) {
    if (!cores_.empty()) pin_to_core(cores_[index % cores_.size()]);
    uint64_t seen = 0;
    for (;;) {
        // Spin a little for back-to-back jobs (one per matmul in a decode step), then sleep.
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int spins = 0; gen == seen && spins < 20000; ++spins) {
            cpu_relax();
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load() != seen; });
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load()) return;
        run_share(index);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

}  // namespace llmq

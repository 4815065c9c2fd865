// PromptWorker: the daemon's one thread for per-request work that must stay off the Asio
// thread (see server.cpp).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace llmq {

// One thread that prepares requests off the Asio thread: tokenizing a prompt (and the
// engine's other per-request checks) is O(prompt), so it never runs where every client's
// hello, doorbell and status command are served. Jobs run in submission order.
class PromptWorker {
public:
    PromptWorker() : thread_([this] { run(); }) {}
    ~PromptWorker() { stop(); }
    void post(std::function<void()> job) {
        {
            std::lock_guard lock(mutex_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }
    // Drops the jobs not started and joins the thread.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            jobs_.clear();
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
                if (stopping_) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace llmq

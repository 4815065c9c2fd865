#include "device_worker.hpp"

#include <future>

namespace llmq {

DeviceWorker::DeviceWorker(const std::function<void()>& on_start) {
    std::promise<void> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, &on_start, &ready] {
        on_start();
        ready.set_value();
        run();
    });
    started.wait();
}

DeviceWorker::~DeviceWorker() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void DeviceWorker::post(std::function<void()> task) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(task));
    }
    cv_.notify_one();
}

void DeviceWorker::run() {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        task();
    }
}

}  // namespace llmq

// A device's worker thread: tasks posted from any thread run on it one at a time, in order.
// CPU and CUDA devices each own one (device.hpp: Device::post).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace llmq {

class DeviceWorker {
public:
    // Starts the thread, runs `on_start` on it (pinning, the device's context, its stream) and
    // returns once that is done.
    explicit DeviceWorker(const std::function<void()>& on_start);
    // Runs the tasks already queued, then stops the thread.
    ~DeviceWorker();
    DeviceWorker(const DeviceWorker&) = delete;
    DeviceWorker& operator=(const DeviceWorker&) = delete;

    // Thread-safe.
    void post(std::function<void()> task);

private:
    void run();

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace llmq

// InstanceLock: one daemon per instance, for the daemon's whole life.
//
// A Boost.Interprocess file_lock (an fcntl record lock) on <dir>/llmq-<instance>.lock. The
// kernel releases it when the process dies, however it dies, so a lock left by a crashed daemon
// is simply taken by the next one. A daemon that stops removes the file while it still holds the
// lock; acquire() checks, once it holds a lock, that the path still names the file it locked,
// and starts over when it does not (the file was removed under it). The holder writes its pid
// into the file; a second daemon is refused with the pid the kernel reports for the lock
// (F_GETLK), falling back to the pid in the file.
//
// fcntl locks belong to the process and vanish when ANY descriptor of the file is closed by it,
// so nothing else in the daemon may open the lock file. They do not exclude threads of the same
// process, and a forked child does not inherit them.
#pragma once

#include <filesystem>
#include <memory>

#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

class InstanceLock {
public:
    // Creates the lock file if needed (mode 0600) and takes the lock without waiting.
    // Error busy when another process holds it: "instance 'x' is already served by pid N (lock
    // <path>); stop that llmqd or choose another instance".
    [[nodiscard]] static Result<InstanceLock> acquire(const std::filesystem::path& lock_path,
                                                      std::string_view instance);

    InstanceLock(InstanceLock&&) noexcept;
    InstanceLock& operator=(InstanceLock&&) noexcept;
    ~InstanceLock();  // removes the lock file, then releases the lock

private:
    [[nodiscard]] static Result<InstanceLock> acquire_once(const std::filesystem::path& lock_path,
                                                           std::string_view instance);
    struct Held;
    explicit InstanceLock(std::unique_ptr<Held> held);
    std::unique_ptr<Held> held_;
};

}  // namespace llmq::ipc

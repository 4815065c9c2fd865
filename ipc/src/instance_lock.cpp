#include "llmq/ipc/instance_lock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/file_lock.hpp>
#include <string>

#include "llmq/ipc/unique_fd.hpp"

namespace llmq::ipc {

struct InstanceLock::Held {
    // Kept open for the daemon's life: closing any descriptor of the file would drop the lock.
    UniqueFd fd;
    boost::interprocess::file_lock lock;
    std::filesystem::path path;
};

namespace {

// Who holds the lock: the kernel's answer first, the pid written in the file second.
std::string holder_of(int fd) {
    struct flock query {};
    query.l_type = F_WRLCK;
    query.l_whence = SEEK_SET;
    if (::fcntl(fd, F_GETLK, &query) == 0 && query.l_type != F_UNLCK && query.l_pid > 0) {
        return "pid " + std::to_string(query.l_pid);
    }
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    if (n > 0) {
        std::string pid(text, static_cast<std::size_t>(n));
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        if (!pid.empty()) return "pid " + pid;
    }
    return "another process";
}

}  // namespace

InstanceLock::InstanceLock(std::unique_ptr<Held> held) : held_(std::move(held)) {}
InstanceLock::InstanceLock(InstanceLock&&) noexcept = default;
InstanceLock& InstanceLock::operator=(InstanceLock&&) noexcept = default;

InstanceLock::~InstanceLock() {
    if (!held_) return;
    // Removed while still held: a daemon that opened this file meanwhile finds, once it has
    // the lock, that the path no longer names its file, and starts over (acquire).
    ::unlink(held_->path.c_str());
    held_->lock.unlock();
}

Result<InstanceLock> InstanceLock::acquire(const std::filesystem::path& lock_path, std::string_view instance) {
    for (int attempt = 0;; ++attempt) {
        auto lock = acquire_once(lock_path, instance);
        if (lock || lock.error().code != ErrorCode::not_found || attempt == 8) return lock;
    }
}

Result<InstanceLock> InstanceLock::acquire_once(const std::filesystem::path& lock_path, std::string_view instance) {
    const std::string shown = lock_path.string();
    UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return errno_error("instance lock " + shown + ": opening it");

    auto held = std::make_unique<Held>();
    try {
        held->lock = boost::interprocess::file_lock(lock_path.c_str());
        if (!held->lock.try_lock()) {
            return make_error(ErrorCode::busy, "instance '" + std::string(instance) + "' is already served by " +
                                                   holder_of(fd.get()) + " (lock " + shown +
                                                   "); stop that llmqd or choose another instance");
        }
    } catch (const boost::interprocess::interprocess_exception& e) {
        return make_error(ErrorCode::io_error, "instance lock " + shown + ": " + e.what());
    }
    struct stat mine {}, named {};
    if (::fstat(fd.get(), &mine) != 0 || ::stat(lock_path.c_str(), &named) != 0 || mine.st_ino != named.st_ino ||
        mine.st_dev != named.st_dev) {
        return make_error(ErrorCode::not_found, "instance lock " + shown + ": removed while it was taken");
    }
    held->path = lock_path;
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        return errno_error("instance lock " + shown + ": writing the pid");
    }
    held->fd = std::move(fd);
    return InstanceLock(std::move(held));
}

}  // namespace llmq::ipc

// A plugin file read once. Every user of a plugin's bytes — the probe process, the private
// copy, dlopen — gets the one sealed copy made here, never the file name again, so whatever
// happens to the name (a symlink flipped, a file renamed over it, a FIFO put in its place)
// after it was read cannot change what is checked or what runs.
//
// open(): the name is opened once, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC (a final
// symbolic link is refused; O_NONBLOCK: opening a FIFO never waits for a writer); fstat on that
// descriptor must show a regular file of at most `max_size` bytes ([plugins] max_file_size);
// its bytes are copied (at most max_size of them, however the file grows meanwhile) into a
// memfd, which is then sealed against writes, growth and shrinking (F_SEAL_*), so nobody, not
// even this process, can change it afterwards.
//
// The copy is handed on as a descriptor: to the probe as an inherited descriptor (it opens
// /proc/self/fd/N of its own), and to dlopen as /proc/self/fd/N of this process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "llmq/runtime/status.hpp"

namespace llmq {

class PluginFile {
public:
    static constexpr uint64_t default_max_size = 256ull << 20;

    // Read `path` once as described above. Refusals name the file and the reason: no such
    // file, a symbolic link, a directory / FIFO / device / socket, too large, unreadable.
    static Expected<std::shared_ptr<const PluginFile>> open(const std::string& path, uint64_t max_size);
    // Take over `fd`, a sealed copy made by open() in another process (the probe's inherited
    // descriptor); `path` is the user's file, for messages. Refused unless it is sealed.
    static Expected<std::shared_ptr<const PluginFile>> adopt(int fd, const std::string& path);

    PluginFile(const PluginFile&) = delete;
    PluginFile& operator=(const PluginFile&) = delete;
    ~PluginFile();

    int fd() const { return fd_; }                 // the sealed memfd
    const std::string& path() const { return path_; }  // the user's path, for messages
    uint64_t size() const { return size_; }

private:
    PluginFile() = default;
    int fd_ = -1;
    std::string path_;
    uint64_t size_ = 0;
};

}  // namespace llmq

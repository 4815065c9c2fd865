// A plugin file read once into a sealed memfd; see plugin_file.hpp.
#include "llmq/runtime/plugin_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "llmq/runtime/byte_size.hpp"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

namespace llmq {

namespace {

constexpr int all_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

const char* file_type_name(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

// Closes the descriptor unless released.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    int release() {
        const int f = fd;
        fd = -1;
        return f;
    }
};

int make_memfd(const std::string& path) {
    std::string name = "llmq-plugin:" + path.substr(path.find_last_of('/') + 1);
    if (name.size() > 200) name.resize(200);
    // MFD_EXEC: where vm.memfd_noexec is set, ask for an executable memfd explicitly; kernels
    // before 6.3 do not know the flag.
    int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return fd;
}

bool write_all(int fd, const char* data, size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        data += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

}  // namespace

Expected<std::shared_ptr<const PluginFile>> PluginFile::open(const std::string& path, uint64_t max_size) {
    const std::string who = "plugin " + path;
    Fd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (in.fd < 0) {
        const int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return not_found(who + ": no such file; check the path (or [plugins] dir and the plugin name)");
        if (e == ELOOP)
            return invalid_argument(who + ": is a symbolic link; plugin files are opened without following "
                                          "links, give the path of the file itself");
        return io_error(who + ": cannot open it (" + std::strerror(e) + ")");
    }
    struct stat st{};
    if (::fstat(in.fd, &st) != 0) return io_error(who + ": cannot fstat it (" + std::strerror(errno) + ")");
    if (!S_ISREG(st.st_mode))
        return invalid_argument(who + ": is " + file_type_name(st.st_mode) + ", not a regular file");
    if (static_cast<uint64_t>(st.st_size) > max_size)
        return invalid_argument(who + ": is " + format_bytes(static_cast<uint64_t>(st.st_size)) + " (" +
                                std::to_string(st.st_size) + " bytes), larger than [plugins] max_file_size (" +
                                format_bytes(max_size) + ")");
    // A regular file never blocks; clear the flag anyway so that the read loop below is plain.
    ::fcntl(in.fd, F_SETFL, ::fcntl(in.fd, F_GETFL) & ~O_NONBLOCK);

    Fd out(make_memfd(path));
    if (out.fd < 0) return io_error(who + ": cannot create a memfd for its copy (" + std::strerror(errno) + ")");
    uint64_t copied = 0;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(in.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error(who + ": cannot read it (" + std::strerror(errno) + ")");
        if (n == 0) break;
        copied += static_cast<uint64_t>(n);
        if (copied > max_size)
            return invalid_argument(who + ": grew past [plugins] max_file_size (" + format_bytes(max_size) +
                                    ") while it was read");
        if (!write_all(out.fd, buf, static_cast<size_t>(n)))
            return io_error(who + ": cannot copy it into memory (" + std::strerror(errno) + ")");
    }
    if (::fcntl(out.fd, F_ADD_SEALS, all_seals) != 0)
        return io_error(who + ": cannot seal its in-memory copy (" + std::strerror(errno) + ")");
    std::shared_ptr<PluginFile> f(new PluginFile());
    f->fd_ = out.release();
    f->path_ = path;
    f->size_ = copied;
    return std::shared_ptr<const PluginFile>(std::move(f));
}

Expected<std::shared_ptr<const PluginFile>> PluginFile::adopt(int fd, const std::string& path) {
    const std::string who = "plugin " + path;
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return invalid_argument(who + ": descriptor " + std::to_string(fd) + " is not a sealed memfd (" +
                                std::strerror(errno) + ")");
    if ((seals & all_seals) != all_seals)
        return invalid_argument(who + ": descriptor " + std::to_string(fd) + " is a memfd that is not sealed");
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return invalid_argument(who + ": descriptor " + std::to_string(fd) + " is not a file");
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    std::shared_ptr<PluginFile> f(new PluginFile());
    f->fd_ = fd;
    f->path_ = path;
    f->size_ = static_cast<uint64_t>(st.st_size);
    return std::shared_ptr<const PluginFile>(std::move(f));
}

PluginFile::~PluginFile() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace llmq

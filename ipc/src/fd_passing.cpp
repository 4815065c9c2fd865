#include "llmq/ipc/fd_passing.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace llmq::ipc {

namespace {
constexpr std::size_t kMaxFds = 4;
}

Result<void> send_with_fds(int socket, std::string_view bytes, std::span<const int> fds) {
    if (fds.size() > kMaxFds) return make_error(ErrorCode::internal, "send_with_fds: too many descriptors");
    std::size_t sent = 0;
    bool fds_sent = fds.empty();
    while (sent < bytes.size()) {
        iovec iov{const_cast<char*>(bytes.data() + sent), bytes.size() - sent};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
        if (!fds_sent) {
            std::memset(control, 0, sizeof control);
            msg.msg_control = control;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
        }
        const ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pollfd p{socket, POLLOUT, 0};
                if (::poll(&p, 1, 1000) <= 0) return make_error(ErrorCode::timeout, "sending on a socket: peer not reading");
                continue;
            }
            return errno_error("sending on a socket");
        }
        fds_sent = true;
        sent += static_cast<std::size_t>(n);
    }
    return {};
}

Result<std::size_t> receive_with_fds(int socket, char* buffer, std::size_t capacity, std::vector<UniqueFd>& fds) {
    iovec iov{buffer, capacity};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return make_error(ErrorCode::timeout, "nothing to receive yet");
        return errno_error("receiving on a socket");
    }
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            fds.emplace_back(fd);
        }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
        return make_error(ErrorCode::protocol, "receiving on a socket: too many descriptors attached");
    }
    return static_cast<std::size_t>(n);
}

}  // namespace llmq::ipc

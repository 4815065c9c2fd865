// Sending and receiving file descriptors over a UNIX stream socket (SCM_RIGHTS).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "llmq/ipc/result.hpp"
#include "llmq/ipc/unique_fd.hpp"

namespace llmq::ipc {

// Sends all of `bytes` with `fds` attached to the first byte (sendmsg, MSG_NOSIGNAL). Waits for
// a non-blocking socket to drain (poll) up to 1 second. The descriptors stay owned by the caller.
[[nodiscard]] Result<void> send_with_fds(int socket, std::string_view bytes, std::span<const int> fds);

// One non-blocking recvmsg into `buffer`; received descriptors (close-on-exec) are appended to
// `fds`. Returns the byte count (0: the peer closed the connection); error timeout when nothing
// is there yet. A message that carried more descriptors than fit is a protocol error.
[[nodiscard]] Result<std::size_t> receive_with_fds(int socket, char* buffer, std::size_t capacity,
                                                   std::vector<UniqueFd>& fds);

}  // namespace llmq::ipc

// Where an instance lives: the directory, the socket and the lock file, and the checks that make
// the directory the access control.
//
//   <dir>/llmq-<instance>.sock   the UNIX stream socket clients connect to
//   <dir>/llmq-<instance>.lock   the daemon's lock file (instance_lock.hpp), holds its pid
//
// The directory is private to the daemon's user (0700), or to one group (0750, group-owned)
// when [ipc] group is set: whoever cannot enter it cannot reach the socket.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

// The directory both llmqd and clients use when none is configured: $LLMQ_IPC_DIR, else
// $XDG_RUNTIME_DIR/llmq, else /tmp/llmq-<uid>. Empty variables count as unset.
std::filesystem::path default_ipc_dir();

// Instance names: 1 to 64 of [A-Za-z0-9_.-], not starting with '.'.
[[nodiscard]] Result<void> validate_instance_name(std::string_view instance);

std::filesystem::path instance_socket_path(const std::filesystem::path& dir, std::string_view instance);
std::filesystem::path instance_lock_path(const std::filesystem::path& dir, std::string_view instance);

// Creates `dir` (its parent must exist) with mode 0700, or 0750 and group `group`; or checks an
// existing one: a real directory (not a symlink), owned by this user, with exactly that mode and
// group. Anything else is refused with a message that says what to change.
[[nodiscard]] Result<void> prepare_instance_dir(const std::filesystem::path& dir, std::optional<gid_t> group);

// The gid of a group name ([ipc] group), or not_found.
[[nodiscard]] Result<gid_t> lookup_group(const std::string& name);

}  // namespace llmq::ipc

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
#include <vector>

#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

// The directory both llmqd and clients use when none is configured: $LLMQ_IPC_DIR, else
// $XDG_RUNTIME_DIR/llmq, else /tmp/llmq-<uid>. Empty variables count as unset.
std::filesystem::path default_ipc_dir();

// The system service's directory (the systemd unit's RuntimeDirectory).
inline constexpr const char* kSystemIpcDir = "/run/llmq";

// Where a client looks for an instance when no directory is given: $LLMQ_IPC_DIR alone when it
// is set, else default_ipc_dir() and then kSystemIpcDir, so that a system service is found
// without configuration while a user's own daemon comes first.
std::vector<std::filesystem::path> client_ipc_dirs();

// The socket of `instance` in the first of `dirs` that has one (a socket file, not merely a
// name), else its path in dirs.front(), for the error to name. `dirs` must not be empty.
std::filesystem::path find_instance_socket(const std::vector<std::filesystem::path>& dirs,
                                           std::string_view instance);

// Instance names: 1 to 64 of [A-Za-z0-9_.-], not starting with '.'.
[[nodiscard]] Result<void> validate_instance_name(std::string_view instance);

std::filesystem::path instance_socket_path(const std::filesystem::path& dir, std::string_view instance);
std::filesystem::path instance_lock_path(const std::filesystem::path& dir, std::string_view instance);

// Creates `dir` (its parent must exist) with mode 0700, or 0750 and group `group`; or checks an
// existing one: a real directory (not a symlink), owned by this user, with that mode and group.
// An existing directory of this user that no one outside its group can enter and only this user
// can write (0700 or 0750, such as the one systemd's RuntimeDirectory= makes) is given the mode
// and group; anything else is refused with a message that says what to change.
[[nodiscard]] Result<void> prepare_instance_dir(const std::filesystem::path& dir, std::optional<gid_t> group);

// The gid of a group name ([ipc] group), or not_found.
[[nodiscard]] Result<gid_t> lookup_group(const std::string& name);

}  // namespace llmq::ipc

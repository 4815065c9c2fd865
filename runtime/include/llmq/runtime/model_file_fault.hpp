// What llmqd does when a model file changes under it.
//
// The weights are read straight from a shared read-only mapping of the model file. When the
// file is truncated (or replaced in place by a shorter one) while it is mapped, reading a page
// past its new end raises SIGBUS, which would kill the daemon silently and leave its socket
// behind. With the handler installed, a SIGBUS whose address lies in a registered model
// mapping instead writes one line to stderr naming the file and the byte that could not be
// read, removes the daemon's socket, and exits with status model_file_fault_exit_code (74,
// EX_IOERR), so a supervisor (the systemd unit restarts on failure) sees a fault and starts
// a fresh daemon on the new file. Any other SIGBUS keeps its default action (a core dump).
//
// A file rewritten in place without changing its size cannot be noticed this way: pages not
// yet read show the new bytes. Replace model files by writing a new file and renaming it over
// the old one (the running daemon keeps the old inode), never by writing into it.
#pragma once

#include <cstddef>
#include <string>

namespace llmq {

inline constexpr int model_file_fault_exit_code = 74;

// Remember [base, base + size) as the mapping of model file `path` (at most 16 at once; more
// are simply not covered). Unregister before unmapping it. Thread: any.
void register_model_mapping(const void* base, size_t size, const std::string& path);
void unregister_model_mapping(const void* base);

// Install the SIGBUS handler; `socket_path` (may be empty) is unlinked before exiting on a
// fault. Call once the socket exists and before the model is read. Thread: any, once.
void install_model_file_fault_handler(const std::string& socket_path);

}  // namespace llmq

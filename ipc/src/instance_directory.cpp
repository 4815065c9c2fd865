#include "llmq/ipc/instance_directory.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace llmq::ipc {
namespace {

std::string octal(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

const char* env(const char* name) {
    const char* value = std::getenv(name);
    return (value != nullptr && value[0] != '\0') ? value : nullptr;
}

}  // namespace

std::filesystem::path default_ipc_dir() {
    if (const char* dir = env("LLMQ_IPC_DIR")) return dir;
    if (const char* runtime = env("XDG_RUNTIME_DIR")) return std::filesystem::path(runtime) / "llmq";
    return "/tmp/llmq-" + std::to_string(::geteuid());
}

std::vector<std::filesystem::path> client_ipc_dirs() {
    if (const char* dir = env("LLMQ_IPC_DIR")) return {dir};
    std::vector<std::filesystem::path> dirs{default_ipc_dir()};
    if (dirs.front() != kSystemIpcDir) dirs.emplace_back(kSystemIpcDir);
    return dirs;
}

std::filesystem::path find_instance_socket(const std::vector<std::filesystem::path>& dirs,
                                           std::string_view instance) {
    for (const auto& dir : dirs) {
        const auto path = instance_socket_path(dir, instance);
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return path;
    }
    return instance_socket_path(dirs.front(), instance);
}

Result<void> validate_instance_name(std::string_view instance) {
    bool ok = !instance.empty() && instance.size() <= 64 && instance.front() != '.';
    for (const char c : instance) {
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-');
    }
    if (!ok) {
        return make_error(ErrorCode::invalid_argument,
                          "instance name '" + std::string(instance.substr(0, 80)) +
                              "': use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with '.')");
    }
    return {};
}

std::filesystem::path instance_socket_path(const std::filesystem::path& dir, std::string_view instance) {
    return dir / ("llmq-" + std::string(instance) + ".sock");
}

std::filesystem::path instance_lock_path(const std::filesystem::path& dir, std::string_view instance) {
    return dir / ("llmq-" + std::string(instance) + ".lock");
}

Result<void> prepare_instance_dir(const std::filesystem::path& dir, std::optional<gid_t> group) {
    const mode_t want = group ? 0750 : 0700;
    const std::string shown = dir.string();
    if (::mkdir(dir.c_str(), want) == 0) {
        // mkdir's mode went through the umask, which can only have narrowed it.
        if (::chmod(dir.c_str(), want) != 0) return errno_error("ipc dir " + shown + ": setting mode " + octal(want));
        if (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0) {
            return errno_error("ipc dir " + shown + ": giving it to group " + std::to_string(*group) +
                               " (is this user a member?)");
        }
    } else if (errno != EEXIST) {
        return errno_error("ipc dir " + shown + ": creating it (its parent must exist)");
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) return errno_error("ipc dir " + shown);
    auto refuse = [&](const std::string& why, const std::string& fix) -> Result<void> {
        return make_error(ErrorCode::permission_denied,
                          "ipc dir " + shown + ": " + why +
                              ", so other users could reach or replace the socket; " + fix);
    };
    if (S_ISLNK(st.st_mode)) return refuse("is a symbolic link", "remove it or set [ipc] dir elsewhere");
    if (!S_ISDIR(st.st_mode)) return refuse("is not a directory", "remove it or set [ipc] dir elsewhere");
    if (st.st_uid != ::geteuid()) {
        return refuse("is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                          std::to_string(::geteuid()) + ")",
                      "remove it or set [ipc] dir elsewhere");
    }
    // A directory of ours that at most its group could read (0700, 0750: systemd's
    // RuntimeDirectory=) may be given the configured mode and group: nobody else can have put
    // anything in it. Anything looser is refused, not silently narrowed.
    const bool only_we_write = (st.st_mode & 07777 & ~0750) == 0;
    if (only_we_write && group && st.st_gid != *group) {
        if (::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0) {
            return errno_error("ipc dir " + shown + ": giving it to group " + std::to_string(*group) +
                               " (is this user a member?)");
        }
        st.st_gid = *group;
    }
    if (only_we_write && (st.st_mode & 07777) != want) {
        if (::chmod(dir.c_str(), want) != 0) return errno_error("ipc dir " + shown + ": setting mode " + octal(want));
        st.st_mode = (st.st_mode & ~07777) | want;
    }
    if ((st.st_mode & 07777) != want) {
        return refuse("has mode " + octal(st.st_mode) + ", expected " + octal(want),
                      "run chmod " + octal(want) + " " + shown);
    }
    if (group && st.st_gid != *group) {
        return refuse("belongs to group " + std::to_string(st.st_gid) + ", expected " + std::to_string(*group),
                      "run chgrp " + std::to_string(*group) + " " + shown);
    }
    return {};
}

Result<gid_t> lookup_group(const std::string& name) {
    group entry {};
    group* found = nullptr;
    std::vector<char> buffer(16384);
    const int rc = ::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc != 0 || found == nullptr) {
        return make_error(ErrorCode::not_found, "[ipc] group '" + name + "': no such group on this host");
    }
    return found->gr_gid;
}

}  // namespace llmq::ipc

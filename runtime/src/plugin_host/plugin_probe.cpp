// The daemon's side of the plugin probe: spawn, feed, watch, judge. See plugin_probe.hpp.
#include "llmq/runtime/plugin_probe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

extern char** environ;

#include "llmq_plugin_paths.h"

namespace llmq {

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* probe_name = "llmq-plugin-probe";
constexpr size_t stderr_tail_bytes = 1024;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A pipe whose two ends close with it.
struct Pipe {
    int fd[2] = {-1, -1};
    ~Pipe() { close_both(); }
    void close_end(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
    void close_both() {
        close_end(0);
        close_end(1);
    }
};

// Write all of `data` to a pipe whose reader may already be gone: SIGPIPE is blocked for this
// thread around the write and a pending one is taken back, so the daemon never dies of it.
bool write_all_no_sigpipe(int fd, std::string_view data) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool ok = true;
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ok = false;
            break;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    if (!ok) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ok;
}

std::string signal_label(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

status_code code_from_name(const std::string& name) {
    for (status_code c : {status_code::invalid_argument, status_code::not_found, status_code::corrupt,
                          status_code::unsupported, status_code::out_of_memory, status_code::unavailable,
                          status_code::io_error, status_code::internal})
        if (name == status_code_name(c)) return c;
    return status_code::corrupt;
}

std::string tail_lines(const std::string& text) {
    std::string t = text.size() > stderr_tail_bytes ? text.substr(text.size() - stderr_tail_bytes) : text;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    for (auto& c : t)
        if (c == '\n') c = '|';
    return t;
}

}  // namespace

std::string plugin_probe_executable() {
    if (const char* env = std::getenv("LLMQ_PLUGIN_PROBE"); env && *env) return env;
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto beside = self.parent_path() / probe_name;
        if (std::filesystem::is_regular_file(beside, ec)) return beside.string();
        // A binary running from the build tree uses the build tree's probe.
        const std::string build = LLMQ_BUILD_PROBE_PATH;
        if (!build.empty() && std::filesystem::is_regular_file(build, ec)) {
            const auto root = std::filesystem::path(build).parent_path().parent_path().parent_path();
            const auto rel = std::filesystem::relative(self, root, ec);
            if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0) return build;
        }
        // An installed binary uses the probe of its own prefix (see default_plugin_dir).
        const auto installed = self.parent_path().parent_path() / LLMQ_INSTALL_PROBE_SUBPATH;
        if (std::filesystem::is_regular_file(installed, ec)) return installed.string();
    }
    return LLMQ_INSTALL_PROBE_PATH;
}

Expected<ProbeReport> run_plugin_probe(const ProbeRequest& request) {
    const auto start = Clock::now();
    const std::string who = "plugin " + request.path;
    const std::string exe = plugin_probe_executable();

    // The daemon hands the copy it loads afterwards; a caller that has none reads it here.
    std::shared_ptr<const PluginFile> file = request.file;
    if (!file) {
        auto opened = PluginFile::open(request.path, PluginFile::default_max_size);
        if (!opened) return opened.status();
        file = *opened;
    }
    constexpr int probe_file_fd = 3;
    nlohmann::json req = {{"path", request.path},
                          {"fd", probe_file_fd},
                          {"kind", request.kind},
                          {"backend", request.backend},
                          {"tables", request.tables},
                          {"shapes", canary_shapes_to_json(request.shapes)}};
    const std::string text = req.dump() + "\n";

    Pipe in, out, err;
    if (pipe2(in.fd, O_CLOEXEC) != 0 || pipe2(out.fd, O_CLOEXEC) != 0 || pipe2(err.fd, O_CLOEXEC) != 0)
        return io_error(who + ": cannot create pipes for the probe process: " + std::strerror(errno));

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
    // The plugin's sealed copy as descriptor 3 (dup2 clears close-on-exec, also when it is 3
    // already); the daemon's sockets, other memfds and lock stay in the daemon.
    int file_fd = file->fd();
    int low_copy = -1;  // a copy above the standard descriptors, which the dups above replace
    if (file_fd < probe_file_fd) file_fd = low_copy = ::fcntl(file_fd, F_DUPFD_CLOEXEC, probe_file_fd + 1);
    posix_spawn_file_actions_adddup2(&actions, file_fd, probe_file_fd);
    posix_spawn_file_actions_addclosefrom_np(&actions, probe_file_fd + 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string arg0 = exe;
    char* argv[] = {arg0.data(), nullptr};
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, exe.c_str(), &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (low_copy >= 0) ::close(low_copy);
    if (spawned != 0)
        return io_error(who + ": cannot start the probe process " + exe + " (" + std::strerror(spawned) +
                        "); set LLMQ_PLUGIN_PROBE to its path, or [plugins] probe = false");
    in.close_end(0);
    out.close_end(1);
    err.close_end(1);

    (void)write_all_no_sigpipe(in.fd[1], text);  // a probe that died early is judged below
    in.close_end(1);

    // Read both streams to their end or the deadline.
    const auto deadline = start + request.timeout;
    std::string out_text, err_text;
    bool out_open = true, err_open = true, timed_out = false, cancelled = false;
    char buf[4096];
    while (out_open || err_open) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd fds[3] = {{out_open ? out.fd[0] : -1, POLLIN, 0},
                         {err_open ? err.fd[0] : -1, POLLIN, 0},
                         {request.cancel_fd, POLLIN, 0}};
        const int n = ::poll(fds, 3, static_cast<int>(std::min<long long>(left, 1000)));
        if (n < 0 && errno != EINTR) break;
        if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            cancelled = true;
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                std::string& to = i == 0 ? out_text : err_text;
                if (to.size() < (1u << 20)) to.append(buf, static_cast<size_t>(r));
                if (i == 1 && err_text.size() > 4 * stderr_tail_bytes)
                    err_text.erase(0, err_text.size() - 2 * stderr_tail_bytes);
            } else if (r == 0 || errno != EINTR) {
                (i == 0 ? out_open : err_open) = false;
            }
        }
    }
    // The streams are closed (or the time is up): collect the process, killing it if it lingers.
    if (timed_out || cancelled) ::kill(pid, SIGKILL);
    int wstatus = 0;
    for (;;) {
        const pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (w == 0) {
            if (!timed_out && !cancelled && Clock::now() >= deadline) {
                timed_out = true;
                ::kill(pid, SIGKILL);
            }
            ::usleep(1000);
        }
    }

    // What the probe said: its last stage and its verdict.
    std::string stage = "start";
    nlohmann::json verdict;
    size_t pos = 0;
    while (pos < out_text.size()) {
        size_t end = out_text.find('\n', pos);
        if (end == std::string::npos) end = out_text.size();
        auto line = nlohmann::json::parse(out_text.substr(pos, end - pos), nullptr, false);
        pos = end + 1;
        if (!line.is_object()) continue;
        if (line.contains("stage") && line["stage"].is_string() && !line.contains("ok"))
            stage = line["stage"].get<std::string>();
        if (line.contains("ok")) verdict = line;
    }
    std::string tail = tail_lines(err_text);
    const std::string stderr_note = tail.empty() ? "" : " (probe stderr: " + tail + ")";

    if (cancelled)
        return unavailable(who + ": the probe was stopped in " + stage + " because llmqd is stopping");
    if (timed_out)
        return unavailable(who + ": the probe process did not finish within " +
                           std::to_string(request.timeout.count()) + " ms (last stage: " + stage +
                           "); it was killed and the plugin refused" + stderr_note);
    if (WIFSIGNALED(wstatus))
        return corrupt(who + ": the probe process crashed with " + signal_label(WTERMSIG(wstatus)) + " in " +
                       stage + "; the plugin was refused and never loaded into the daemon" + stderr_note);
    if (verdict.is_object() && verdict.value("ok", false) && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
        ProbeReport r;
        r.total_ms = ms_since(start);
        r.load_ms = verdict.value("load_ms", 0.0);
        r.init_ms = verdict.value("init_ms", 0.0);
        r.canary_ms = verdict.value("canary_ms", 0.0);
        return r;
    }
    if (verdict.is_object() && verdict.contains("error") && verdict["error"].is_string())
        return Status(code_from_name(verdict.value("code", std::string())),
                      verdict["error"].get<std::string>() + " (found by the probe in " +
                          verdict.value("stage", stage) + ")");
    return corrupt(who + ": the probe process exited with status " +
                   std::to_string(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) + " in " + stage +
                   " without a verdict" + stderr_note);
}

}  // namespace llmq

// One daemon per instance: a second listener (in a child process, since fcntl locks belong to
// a process) is refused with the first one's pid; a daemon killed with SIGKILL leaves a socket
// and a lock file that the next one takes over without cleanup; unsafe directories are refused.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <fstream>
#include <thread>

#include "echo_daemon.hpp"
#include "llmq/ipc/client.hpp"
#include "llmq/ipc/instance_directory.hpp"

using namespace llmq::ipc;
using namespace llmq::ipc::testing;
using namespace std::chrono_literals;

namespace {

Result<std::unique_ptr<Listener>> open_listener(boost::asio::io_context& io, const std::filesystem::path& dir) {
    ListenerOptions o;
    o.dir = dir;
    return Listener::open(io, o);
}

// Runs `body` in a forked child; returns its exit status and what it wrote to the pipe.
template <typename Body>
std::pair<int, std::string> in_child(Body body) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(pipe_fds[0]);
        const std::string out = body();
        [[maybe_unused]] auto n = ::write(pipe_fds[1], out.data(), out.size());
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string out;
    char buffer[512];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {status, out};
}

}  // namespace

TEST_CASE("a second listener on the same instance is refused and told the first one's pid") {
    TempDir tmp;
    const auto dir = tmp.path() / "run";
    boost::asio::io_context io;
    auto first = open_listener(io, dir);
    REQUIRE(first.ok());

    std::ifstream pid_file(instance_lock_path(dir, "default"));
    pid_t written = 0;
    pid_file >> written;
    CHECK(written == ::getpid());

    auto [status, message] = in_child([&] {
        boost::asio::io_context child_io;
        auto second = open_listener(child_io, dir);
        if (second.ok()) return std::string("second listener opened");
        return std::string(error_code_name(second.error().code)) + ": " + second.error().message;
    });
    CHECK(WIFEXITED(status));
    CHECK(message.rfind("busy: ", 0) == 0);
    CHECK(message.find("pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK(message.find("llmq-default.lock") != std::string::npos);
    // The first one's socket is untouched.
    CHECK(std::filesystem::is_socket(instance_socket_path(dir, "default")));
}

TEST_CASE("a daemon killed with SIGKILL leaves a socket and lock that the next one takes over") {
    TempDir tmp;
    const auto dir = tmp.path() / "run";
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        boost::asio::io_context io;
        auto listener = open_listener(io, dir);
        const char c = listener.ok() ? 'y' : 'n';
        [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
        for (;;) ::pause();
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    REQUIRE(c == 'y');
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
    CHECK(std::filesystem::exists(instance_socket_path(dir, "default")));  // left behind

    EchoDaemon daemon(dir);
    ConnectOptions o;
    o.dir = dir;
    auto client = Client::connect(o);
    REQUIRE(client.ok());
    CHECK((*client)->ping(3000ms).ok());
}

TEST_CASE("different instances in one directory do not exclude each other") {
    TempDir tmp;
    boost::asio::io_context io;
    ListenerOptions a, b;
    a.dir = b.dir = tmp.path() / "run";
    b.instance = "second";
    auto first = Listener::open(io, a);
    auto second = Listener::open(io, b);
    CHECK(first.ok());
    CHECK(second.ok());
}

TEST_CASE("an instance directory with a loose mode is refused with the chmod that fixes it") {
    TempDir tmp;
    const auto dir = tmp.path() / "loose";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    REQUIRE(::chmod(dir.c_str(), 0755) == 0);
    boost::asio::io_context io;
    auto listener = open_listener(io, dir);
    REQUIRE_FALSE(listener.ok());
    CHECK(listener.error().code == ErrorCode::permission_denied);
    CHECK(listener.error().message.find("mode 0755, expected 0700") != std::string::npos);
    CHECK(listener.error().message.find("chmod 0700") != std::string::npos);
}

TEST_CASE("an instance directory that is a symbolic link is refused") {
    TempDir tmp;
    const auto real = tmp.path() / "real";
    REQUIRE(::mkdir(real.c_str(), 0700) == 0);
    std::filesystem::create_directory_symlink(real, tmp.path() / "link");
    boost::asio::io_context io;
    auto listener = open_listener(io, tmp.path() / "link");
    REQUIRE_FALSE(listener.ok());
    CHECK(listener.error().message.find("symbolic link") != std::string::npos);
}

TEST_CASE("an instance directory owned by another user is refused") {
    // /tmp itself is owned by root and has mode 1777: both checks would refuse it.
    if (::geteuid() == 0) return;  // root owns /tmp; the mode check still refuses, tested above
    boost::asio::io_context io;
    auto listener = open_listener(io, "/tmp");
    REQUIRE_FALSE(listener.ok());
    CHECK(listener.error().message.find("owned by uid 0") != std::string::npos);
}

TEST_CASE("a configured group opens the directory and socket to that group") {
    TempDir tmp;
    boost::asio::io_context io;
    ListenerOptions o;
    o.dir = tmp.path() / "run";
    o.group = ::getegid();
    auto listener = Listener::open(io, o);
    REQUIRE_MESSAGE(listener.ok(), (listener.ok() ? "" : listener.error().message));
    struct stat st {};
    REQUIRE(::stat(o.dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0750);
    CHECK(st.st_gid == ::getegid());
    REQUIRE(::stat((*listener)->socket_path().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0660);
}

TEST_CASE("an existing 0700 directory (systemd's RuntimeDirectory) takes the configured group's mode") {
    TempDir tmp;
    const auto dir = tmp.path() / "run-llmq";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chmod(dir.c_str(), 0700) == 0);
    boost::asio::io_context io;
    ListenerOptions o;
    o.dir = dir;
    o.group = ::getegid();
    auto listener = Listener::open(io, o);
    REQUIRE_MESSAGE(listener.ok(), (listener.ok() ? "" : listener.error().message));
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0750);
    CHECK(st.st_gid == ::getegid());
}

TEST_CASE("clients look in their own directory, then /run/llmq, unless LLMQ_IPC_DIR names one") {
    const char* saved_ipc = std::getenv("LLMQ_IPC_DIR");
    const char* saved_xdg = std::getenv("XDG_RUNTIME_DIR");
    const std::string keep_ipc = saved_ipc ? saved_ipc : "";
    const std::string keep_xdg = saved_xdg ? saved_xdg : "";
    ::unsetenv("LLMQ_IPC_DIR");
    ::setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
    CHECK(client_ipc_dirs() == std::vector<std::filesystem::path>{"/run/user/42/llmq", "/run/llmq"});
    ::setenv("LLMQ_IPC_DIR", "/somewhere/ipc", 1);
    CHECK(client_ipc_dirs() == std::vector<std::filesystem::path>{"/somewhere/ipc"});
    if (saved_ipc) ::setenv("LLMQ_IPC_DIR", keep_ipc.c_str(), 1); else ::unsetenv("LLMQ_IPC_DIR");
    if (saved_xdg) ::setenv("XDG_RUNTIME_DIR", keep_xdg.c_str(), 1); else ::unsetenv("XDG_RUNTIME_DIR");
}

TEST_CASE("a client takes the first directory that holds the instance's socket") {
    TempDir tmp;
    const auto user = tmp.path() / "user", system = tmp.path() / "system";
    boost::asio::io_context io;
    auto listener = open_listener(io, system);
    REQUIRE_MESSAGE(listener.ok(), (listener.ok() ? "" : listener.error().message));
    REQUIRE(::mkdir(user.c_str(), 0700) == 0);
    std::ofstream(instance_socket_path(user, "default")) << "a plain file is not a socket";
    CHECK(find_instance_socket({user, system}, "default") == instance_socket_path(system, "default"));
    CHECK(find_instance_socket({user, system}, "none") == instance_socket_path(user, "none"));
}

TEST_CASE("the default directory follows LLMQ_IPC_DIR, then XDG_RUNTIME_DIR, then /tmp/llmq-<uid>") {
    const char* saved_ipc = std::getenv("LLMQ_IPC_DIR");
    const char* saved_xdg = std::getenv("XDG_RUNTIME_DIR");
    const std::string keep_ipc = saved_ipc ? saved_ipc : "";
    const std::string keep_xdg = saved_xdg ? saved_xdg : "";
    ::setenv("LLMQ_IPC_DIR", "/somewhere/ipc", 1);
    ::setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
    CHECK(default_ipc_dir() == "/somewhere/ipc");
    ::setenv("LLMQ_IPC_DIR", "", 1);
    CHECK(default_ipc_dir() == "/run/user/42/llmq");
    ::unsetenv("XDG_RUNTIME_DIR");
    CHECK(default_ipc_dir() == "/tmp/llmq-" + std::to_string(::geteuid()));
    if (saved_ipc) ::setenv("LLMQ_IPC_DIR", keep_ipc.c_str(), 1); else ::unsetenv("LLMQ_IPC_DIR");
    if (saved_xdg) ::setenv("XDG_RUNTIME_DIR", keep_xdg.c_str(), 1);
}

TEST_CASE("instance names that could escape the directory are refused") {
    CHECK_FALSE(validate_instance_name("").ok());
    CHECK_FALSE(validate_instance_name("../etc").ok());
    CHECK_FALSE(validate_instance_name("a/b").ok());
    CHECK_FALSE(validate_instance_name(".hidden").ok());
    CHECK_FALSE(validate_instance_name(std::string(65, 'a')).ok());
    CHECK(validate_instance_name("default").ok());
    CHECK(validate_instance_name("gpu-0.main_1").ok());
}

// Clients of a daemon that dies get an error within a second, never a hang: the daemon runs in
// a child process and is killed with SIGKILL while the client waits for events, for a control
// reply, or between calls.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "echo_daemon.hpp"
#include "llmq/ipc/client.hpp"

using namespace llmq::ipc;
using namespace llmq::ipc::testing;
using namespace std::chrono_literals;

namespace {

// A daemon in a child process; killed (SIGKILL) by kill() or the destructor.
class ChildDaemon {
public:
    ChildDaemon(const std::filesystem::path& dir, bool answer) {
        int ready[2];
        REQUIRE(::pipe(ready) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(ready[0]);
            boost::asio::io_context io;
            ListenerOptions o;
            o.dir = dir;
            auto listener = Listener::open(io, o);
            if (!listener.ok()) ::_exit(3);
            if (answer) {
                install_echo_handlers(**listener);
            } else {
                (*listener)->add_command("status", [](Connection&, const nlohmann::json&) -> Result<nlohmann::json> {
                    ::pause();  // never answers
                    return nlohmann::json();
                });
            }
            (*listener)->start();
            [[maybe_unused]] auto n = ::write(ready[1], "y", 1);
            io.run();
            ::_exit(0);
        }
        ::close(ready[1]);
        char c = 0;
        REQUIRE(::read(ready[0], &c, 1) == 1);
        ::close(ready[0]);
    }
    ~ChildDaemon() { kill(); }
    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    void kill_after(std::chrono::milliseconds delay) {
        killer_ = std::thread([this, delay] {
            std::this_thread::sleep_for(delay);
            ::kill(pid_, SIGKILL);
        });
    }
    void join_killer() {
        if (killer_.joinable()) killer_.join();
        kill();
    }

private:
    pid_t pid_ = -1;
    std::thread killer_;
};

std::unique_ptr<Client> connect(const std::filesystem::path& dir) {
    ConnectOptions o;
    o.dir = dir;
    auto client = Client::connect(o);
    REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error().to_string()));
    return std::move(*client);
}

}  // namespace

TEST_CASE("a client waiting for events learns within a second that the daemon was killed") {
    TempDir tmp;
    ChildDaemon daemon(tmp.path() / "run", true);
    auto client = connect(tmp.path() / "run");
    REQUIRE(client->ping(3000ms).ok());
    daemon.kill_after(100ms);
    const auto start = std::chrono::steady_clock::now();
    auto e = client->next_event(10000ms);
    const auto waited = std::chrono::steady_clock::now() - start;
    daemon.join_killer();
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == ErrorCode::disconnected);
    CHECK(waited < 1100ms);
    // And every later call says so at once.
    CHECK(client->submit(GenerateRequest{}).error().code == ErrorCode::disconnected);
    CHECK(client->ping(10000ms).error().code == ErrorCode::disconnected);
}

TEST_CASE("a client waiting for a control reply learns within a second that the daemon was killed") {
    TempDir tmp;
    ChildDaemon daemon(tmp.path() / "run", false);
    auto client = connect(tmp.path() / "run");
    daemon.kill_after(100ms);
    const auto start = std::chrono::steady_clock::now();
    auto reply = client->control("status", nullptr, 10000ms);
    const auto waited = std::chrono::steady_clock::now() - start;
    daemon.join_killer();
    REQUIRE_FALSE(reply.ok());
    CHECK(reply.error().code == ErrorCode::disconnected);
    CHECK(waited < 1100ms);
}

TEST_CASE("events published before the daemon died are delivered before the disconnect") {
    TempDir tmp;
    ChildDaemon daemon(tmp.path() / "run", true);
    auto client = connect(tmp.path() / "run");
    GenerateRequest r;
    r.prompt_text = "abc";
    REQUIRE(client->submit(r).ok());
    REQUIRE(client->ping(3000ms).ok());  // the daemon has answered everything before the pong
    daemon.kill();
    int tokens = 0;
    for (;;) {
        auto e = client->next_event(3000ms);
        if (!e.ok()) {
            CHECK(e.error().code == ErrorCode::disconnected);
            break;
        }
        if (e->kind == EventKind::token) ++tokens;
    }
    CHECK(tokens == 3);
}

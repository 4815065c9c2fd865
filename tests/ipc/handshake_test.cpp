// The socket side end to end: a Listener in an io_context thread and real clients. The region
// arrives as a sealed memfd over SCM_RIGHTS with nothing in /dev/shm, requests and events flow
// through it, control commands work, refused peers and versions get clear errors, and a closed
// client ends its lease.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <set>
#include <thread>

#include "echo_daemon.hpp"
#include "llmq/ipc/client.hpp"
#include "llmq/ipc/instance_directory.hpp"
#include "raw_connection.hpp"

using namespace llmq::ipc;
using namespace llmq::ipc::testing;
using namespace std::chrono_literals;

namespace {

std::set<std::string> dev_shm_entries() {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) names.insert(entry.path().filename());
    return names;
}

ConnectOptions options_for(const std::filesystem::path& dir) {
    ConnectOptions o;
    o.dir = dir;
    o.client_name = "handshake test";
    o.timeout = 3s;
    return o;
}

std::unique_ptr<Client> connect(const std::filesystem::path& dir) {
    auto client = Client::connect(options_for(dir));
    REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error().to_string()));
    return std::move(*client);
}

Event next(Client& client) {
    auto e = client.next_event(3000ms);
    REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.error().to_string()));
    return std::move(*e);
}

}  // namespace

TEST_CASE("the daemon hands over a sealed memfd and a doorbell, and nothing appears in /dev/shm") {
    TempDir tmp;
    const auto before = dev_shm_entries();
    EchoDaemon daemon(tmp.path() / "run");

    struct stat st {};
    REQUIRE(::stat((tmp.path() / "run").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat(instance_socket_path(tmp.path() / "run", "default").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);

    RawConnection raw(daemon.listener().socket_path());
    auto welcome = raw.hello();
    REQUIRE(welcome.has_value());
    const auto message = nlohmann::json::parse(*welcome);
    CHECK(message["type"] == "welcome");
    CHECK(message["protocol"] == kProtocolVersion);
    REQUIRE(raw.fds.size() == 2);

    const int memfd = raw.fds[0].get();
    const int seals = ::fcntl(memfd, F_GET_SEALS);
    CHECK((seals & F_SEAL_SHRINK) != 0);
    CHECK((seals & F_SEAL_GROW) != 0);
    CHECK((seals & F_SEAL_SEAL) != 0);
    REQUIRE(::fstat(memfd, &st) == 0);
    CHECK(static_cast<std::uint64_t>(st.st_size) == message["region_size"].get<std::uint64_t>());
    CHECK(::ftruncate(memfd, 0) != 0);
    char link[256] = {};
    REQUIRE(::readlink(("/proc/self/fd/" + std::to_string(memfd)).c_str(), link, sizeof link - 1) > 0);
    CHECK(std::string(link).rfind("/memfd:", 0) == 0);
    CHECK((::fcntl(memfd, F_GETFD) & FD_CLOEXEC) != 0);

    const int doorbell = raw.fds[1].get();
    REQUIRE(::readlink(("/proc/self/fd/" + std::to_string(doorbell)).c_str(), link, sizeof link - 1) > 0);
    CHECK(std::string(link).find("eventfd") != std::string::npos);

    auto client = connect(tmp.path() / "run");
    CHECK(client->welcome()["instance"] == "default");
    const auto after = dev_shm_entries();
    CHECK(after == before);
}

TEST_CASE("a generate request streams one token per byte and a final event through the daemon") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto client = connect(tmp.path() / "run");
    GenerateRequest r;
    r.prompt_text = "hi!";
    auto id = client->submit(r);
    REQUIRE(id.ok());
    std::string text;
    for (int i = 0; i < 3; ++i) {
        Event e = next(*client);
        CHECK(e.kind == EventKind::token);
        CHECK(e.request_id == *id);
        CHECK(e.token_id == static_cast<unsigned char>(r.prompt_text[i]));
        text += e.text;
    }
    CHECK(text == "hi!");
    Event final = next(*client);
    CHECK(final.kind == EventKind::final);
    CHECK(final.finish_reason() == FinishReason::eos);
    CHECK(final.prompt_tokens == 3);
    CHECK(final.generated_tokens == 3);

    auto rtt = client->ping(3000ms);
    REQUIRE(rtt.ok());
    CHECK(rtt->count() > 0);

    REQUIRE(client->cancel(*id).ok());
    Event cancelled = next(*client);
    CHECK(cancelled.kind == EventKind::final);
    CHECK(cancelled.finish_reason() == FinishReason::cancelled);

    auto none = client->next_event(20ms);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code == ErrorCode::timeout);
}

TEST_CASE("a request with a NaN temperature comes back as an error event naming the field") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto client = connect(tmp.path() / "run");
    GenerateRequest r;
    r.prompt_text = "x";
    r.sampling.temperature = std::nanf("");
    auto id = client->submit(r);
    REQUIRE(id.ok());
    Event e = next(*client);
    CHECK(e.kind == EventKind::error);
    CHECK(e.request_id == *id);
    CHECK(e.error_code() == EventError::invalid_request);
    CHECK(e.text.find("sampling.temperature") != std::string::npos);
}

TEST_CASE("control commands return results and errors with their codes") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto client = connect(tmp.path() / "run");
    auto status = client->control("status", nullptr, 3000ms);
    REQUIRE(status.ok());
    CHECK((*status)["connections"] == 1);
    auto echo = client->control("echo", {{"a", {1, 2, 3}}}, 3000ms);
    REQUIRE(echo.ok());
    CHECK((*echo)["a"][2] == 3);
    auto fail = client->control("fail", nullptr, 3000ms);
    REQUIRE_FALSE(fail.ok());
    CHECK(fail.error().code == ErrorCode::invalid_argument);
    CHECK(fail.error().message == "asked to fail");
    auto unknown = client->control("frobnicate", nullptr, 3000ms);
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().message.find("unknown command 'frobnicate'") != std::string::npos);
    CHECK(unknown.error().message.find("status") != std::string::npos);
    // The connection survived the errors.
    CHECK(client->control("status", nullptr, 3000ms).ok());
}

TEST_CASE("notices from the daemon reach the client") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto client = connect(tmp.path() / "run");
    daemon.on_io([&] {
        for (auto& c : daemon.listener().connections()) c->send_notice("draining", {{"seconds", 5}});
    });
    REQUIRE(client->control("status", nullptr, 3000ms).ok());  // the notice was sent first
    auto notices = client->take_notices();
    REQUIRE(notices.size() == 1);
    CHECK(notices[0]["notice"] == "draining");
    CHECK(notices[0]["seconds"] == 5);
}

TEST_CASE("a peer the daemon does not allow is refused with permission_denied") {
    TempDir tmp;
    ListenerOptions o;
    o.allow_peer = [](const PeerCredentials& peer) { return peer.uid == 123456789; };
    EchoDaemon daemon(tmp.path() / "run", o);
    auto client = Client::connect(options_for(tmp.path() / "run"));
    REQUIRE_FALSE(client.ok());
    CHECK(client.error().code == ErrorCode::permission_denied);
    CHECK(client.error().message.find("uid " + std::to_string(::getuid())) != std::string::npos);
    CHECK(daemon.connects == 0);
}

TEST_CASE("a hello with another protocol version is refused naming both versions") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    RawConnection raw(daemon.listener().socket_path());
    auto answer = raw.hello(99);
    REQUIRE(answer.has_value());
    const auto message = nlohmann::json::parse(*answer);
    CHECK(message["type"] == "refused");
    const std::string text = message["error"]["message"];
    CHECK(text.find("99") != std::string::npos);
    CHECK(text.find(std::to_string(kProtocolVersion)) != std::string::npos);
    CHECK(raw.fds.empty());
    CHECK(raw.closed_within(2000ms));
}

TEST_CASE("a connection that never says hello is closed after the handshake timeout") {
    TempDir tmp;
    ListenerOptions o;
    o.handshake_timeout = 200ms;
    EchoDaemon daemon(tmp.path() / "run", o);
    RawConnection raw(daemon.listener().socket_path());
    const auto start = std::chrono::steady_clock::now();
    CHECK(raw.closed_within(3000ms));
    CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("closing a client ends its lease: the daemon sees the disconnect at once") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    {
        auto client = connect(tmp.path() / "run");
        REQUIRE(client->ping(3000ms).ok());
        CHECK(daemon.connects == 1);
    }
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (daemon.disconnects == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    CHECK(daemon.disconnects == 1);
    CHECK(daemon.on_io([&] { return daemon.listener().connections().size(); }) == 0);
}

TEST_CASE("connecting to an instance nobody serves says not_found and names the socket") {
    TempDir tmp;
    ConnectOptions o = options_for(tmp.path());
    o.instance = "nobody";
    auto client = Client::connect(o);
    REQUIRE_FALSE(client.ok());
    CHECK(client.error().code == ErrorCode::not_found);
    CHECK(client.error().message.find("llmq-nobody.sock") != std::string::npos);
}

TEST_CASE("several clients are served side by side") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 8; ++i) clients.push_back(connect(tmp.path() / "run"));
    for (int i = 0; i < 8; ++i) {
        GenerateRequest r;
        r.prompt_text = std::string(static_cast<std::size_t>(i + 1), static_cast<char>('a' + i));
        REQUIRE(clients[i]->submit(r).ok());
    }
    for (int i = 0; i < 8; ++i) {
        std::string text;
        for (;;) {
            Event e = next(*clients[i]);
            if (e.kind == EventKind::final) break;
            text += e.text;
        }
        CHECK(text == std::string(static_cast<std::size_t>(i + 1), static_cast<char>('a' + i)));
    }
}

TEST_CASE("while the daemon spins with its doorbells disarmed, clients publish without ringing") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto client = Client::connect(options_for(tmp.path() / "run"));
    REQUIRE(client.ok());
    auto& c = **client;
    REQUIRE(c.ping(3000ms).ok());  // connected on the daemon's side too

    daemon.on_io([&] { daemon.listener().disarm_doorbells(); });
    // No doorbell: the daemon, asleep in epoll, never hears of this ping...
    auto unheard = c.ping(100ms);
    REQUIRE_FALSE(unheard.ok());
    CHECK(unheard.error().code == ErrorCode::timeout);
    // ...until its spin looks at the ring.
    CHECK(daemon.on_io([&] { return daemon.listener().poll_requests(); }) == 1);
    CHECK(next(c).kind == EventKind::pong);
    CHECK(daemon.on_io([&] { return daemon.listener().poll_requests(); }) == 0);

    // A descriptor published while disarmed makes arm_doorbells() refuse to sleep.
    GenerateRequest r;
    r.prompt_text = "ok";
    REQUIRE(c.submit(r).ok());
    CHECK_FALSE(daemon.on_io([&] { return daemon.listener().arm_doorbells(); }));
    CHECK(daemon.on_io([&] { return daemon.listener().poll_requests(); }) == 1);
    CHECK(next(c).kind == EventKind::token);
    CHECK(next(c).kind == EventKind::token);
    CHECK(next(c).kind == EventKind::final);

    // Armed again, a ping rings and is answered by the doorbell alone.
    CHECK(daemon.on_io([&] { return daemon.listener().arm_doorbells(); }));
    CHECK(c.ping(3000ms).ok());
}

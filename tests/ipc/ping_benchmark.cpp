// Ping round trip through a client's region, beside UNIX-socket round trips measured in the
// same run. The daemon side is a real Listener in its own thread; the client is the real Client.
//
//   region, daemon polling : the daemon keeps polling its regions for a while after the last
//                            request (doorbell disarmed), as llmqd does while it is busy
//   region, daemon asleep  : the daemon waits in epoll on the doorbell eventfd for each ping,
//                            as an idle llmqd does
//   UNIX socket, 1 byte    : a blocking write/read ping-pong on a socketpair between two threads
//   UNIX socket, control   : {"command":"ping"} as a control line over the instance socket
//
// Prints p50 / p99 / mean in microseconds. Target: region ping p50 under 10 us.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "llmq/ipc/client.hpp"
#include "llmq/ipc/listener.hpp"

using namespace llmq::ipc;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWarmup = 2000;

struct Figures {
    double p50, p99, mean;
};

Figures summarize(std::vector<double> us) {
    std::sort(us.begin(), us.end());
    double sum = 0;
    for (double v : us) sum += v;
    return {us[us.size() / 2], us[us.size() * 99 / 100], sum / static_cast<double>(us.size())};
}

void answer(ServerRegion& region) {
    static const DecodeLimits limits;
    std::vector<PolledRequest> polled;
    region.poll(limits, polled);
    for (const auto& r : polled) {
        if (const auto* d = std::get_if<DecodedRequest>(&r); d && d->kind == RequestKind::ping) {
            (void)region.push_event(Event::pong(d->request_id));
        }
    }
}

// A minimal daemon: a Listener whose io thread either waits on doorbells only (polling = false),
// or keeps polling every region for `spin` after the last request before it sleeps.
class BenchDaemon {
public:
    BenchDaemon(const std::filesystem::path& dir, bool polling) : polling_(polling) {
        ListenerOptions o;
        o.dir = dir;
        o.instance = polling ? "polling" : "asleep";
        auto listener = Listener::open(io_, o);
        if (!listener.ok()) {
            std::fprintf(stderr, "ipc_ping: %s\n", listener.error().message.c_str());
            std::exit(1);
        }
        listener_ = std::move(*listener);
        listener_->on_connect([this](const std::shared_ptr<Connection>& c) { regions_[c->id()] = c->region(); });
        listener_->on_disconnect([this](const std::shared_ptr<Connection>& c) { regions_.erase(c->id()); });
        listener_->on_requests([](const std::shared_ptr<Connection>& c) { answer(*c->region()); });
        listener_->add_command("ping", [](Connection&, const nlohmann::json&) -> Result<nlohmann::json> {
            return nlohmann::json{{"pong", true}};
        });
        listener_->start();
        thread_ = std::thread([this] { polling_ ? run_polling() : run_asleep(); });
    }
    ~BenchDaemon() {
        stop_ = true;
        boost::asio::post(io_, [] {});
        thread_.join();
        listener_.reset();
    }

private:
    void run_asleep() {
        while (!stop_) io_.run_one();
    }

    void run_polling() {
        constexpr auto kSpin = std::chrono::microseconds(200);
        auto last = Clock::now();
        while (!stop_) {
            io_.poll();
            bool busy = false;
            for (auto& [id, region] : regions_) {
                region->disarm_doorbell();
                if (region->has_pending_requests()) {
                    answer(*region);
                    busy = true;
                }
            }
            const auto now = Clock::now();
            if (busy) last = now;
            if (now - last < kSpin) {
                // Polling must not starve the client on a machine with fewer free cores than
                // spinning threads.
                if (!busy) std::this_thread::yield();
                continue;
            }
            bool armed = true;
            for (auto& [id, region] : regions_) armed = region->arm_doorbell() && armed;
            if (armed && !stop_) io_.run_one();
            last = Clock::now();
        }
    }

    boost::asio::io_context io_;
    std::unique_ptr<Listener> listener_;
    std::map<std::uint64_t, std::shared_ptr<ServerRegion>> regions_;
    std::atomic<bool> stop_{false};
    bool polling_;
    std::thread thread_;
};

std::vector<double> region_pings(const std::filesystem::path& dir, const char* instance, int samples) {
    ConnectOptions o;
    o.dir = dir;
    o.instance = instance;
    auto client = Client::connect(o);
    if (!client.ok()) {
        std::fprintf(stderr, "ipc_ping: %s\n", client.error().message.c_str());
        std::exit(1);
    }
    std::vector<double> us;
    us.reserve(samples);
    for (int i = 0; i < kWarmup + samples; ++i) {
        auto rtt = (*client)->ping(std::chrono::milliseconds(5000));
        if (!rtt.ok()) {
            std::fprintf(stderr, "ipc_ping: %s\n", rtt.error().message.c_str());
            std::exit(1);
        }
        if (i >= kWarmup) us.push_back(std::chrono::duration<double, std::micro>(*rtt).count());
    }
    return us;
}

std::vector<double> control_pings(const std::filesystem::path& dir, const char* instance, int samples) {
    ConnectOptions o;
    o.dir = dir;
    o.instance = instance;
    auto client = Client::connect(o);
    if (!client.ok()) std::exit(1);
    std::vector<double> us;
    for (int i = 0; i < kWarmup + samples; ++i) {
        const auto start = Clock::now();
        auto reply = (*client)->control("ping", nullptr, std::chrono::milliseconds(5000));
        if (!reply.ok()) std::exit(1);
        if (i >= kWarmup) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    return us;
}

std::vector<double> socketpair_pings(int samples) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::exit(1);
    std::thread echo([fd = fds[1]] {
        char c;
        while (::read(fd, &c, 1) == 1) {
            if (::write(fd, &c, 1) != 1) break;
        }
    });
    std::vector<double> us;
    char c = 'p';
    for (int i = 0; i < kWarmup + samples; ++i) {
        const auto start = Clock::now();
        if (::write(fds[0], &c, 1) != 1 || ::read(fds[0], &c, 1) != 1) std::exit(1);
        if (i >= kWarmup) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    ::shutdown(fds[0], SHUT_RDWR);
    echo.join();
    ::close(fds[0]);
    ::close(fds[1]);
    return us;
}

void print(const char* name, const std::vector<double>& us) {
    const Figures f = summarize(us);
    std::printf("%-44s %8.2f %8.2f %8.2f\n", name, f.p50, f.p99, f.mean);
}

}  // namespace

int main(int argc, char** argv) {
    const int samples = argc > 1 ? std::atoi(argv[1]) : 20000;
    char pattern[] = "/tmp/llmq-ipc-bench-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return 1;
    const std::filesystem::path dir = std::filesystem::path(pattern) / "run";
    std::printf("ipc ping round trip, %d samples each, %u hardware threads\n", samples,
                std::thread::hardware_concurrency());
    std::printf("%-44s %8s %8s %8s\n", "(microseconds)", "p50", "p99", "mean");
    std::vector<double> polling, asleep;
    {
        BenchDaemon daemon(dir, true);
        polling = region_pings(dir, "polling", samples);
    }
    {
        BenchDaemon daemon(dir, false);
        asleep = region_pings(dir, "asleep", samples);
        print("region, daemon polling", polling);
        print("region, daemon asleep (eventfd + futex)", asleep);
        print("UNIX socket, 1 byte each way", socketpair_pings(samples));
        print("UNIX socket, JSON control line", control_pings(dir, "asleep", samples / 4));
    }
    const double polling_p50 = summarize(polling).p50;
    const double asleep_p50 = summarize(asleep).p50;
    std::printf("target region ping p50 < 10 us: daemon asleep %.2f us (%s), daemon polling %.2f us (%s)\n",
                asleep_p50, asleep_p50 < 10.0 ? "met" : "NOT met", polling_p50,
                polling_p50 < 10.0 ? "met" : "NOT met: needs a free core for each of the two spinning threads");
    std::error_code ignored;
    std::filesystem::remove_all(pattern, ignored);
    return 0;
}

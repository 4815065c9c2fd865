// llmq-bench-serve: llmqd serving 1, 8 and 32 concurrent clients, and the ping round trip
// through a client's region, each beside the machine's limit measured in the same run.
//
// It starts llmqd (a child process) on a model file or a model shape made for the run, with a
// config of its own (a temporary [ipc] dir, so it never meets another daemon), and waits until
// a client can connect. Then:
//   ping     a Client pings the idle daemon through its region (the daemon answers on its
//            Asio thread, without the engine); beside it, a 1-byte ping-pong over a UNIX
//            stream socketpair between two threads of this process, measured in the same run.
//   clients  for each count, that many threads, each with its own ipc::Client, connect, then
//            submit at once a short token prompt and read K greedy tokens (ignore_eos).
//            Aggregate decode tokens/s = tokens after each client's first / (last token of any
//            client - first token of any client); the best of --repeat rounds is printed.
//   bounds   1 client: memory bandwidth / weight bytes per token. Many clients: a batched
//            decode step reads each weight once for all sequences, so the bound is
//            min(clients x that, GEMM FLOP rate / 2 x parameters).
//
// A benchmark prints figures; it never fails on them. It fails (non-zero) only when llmqd does
// not start or a request fails.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_model.hpp"
#include "llmq/ipc/client.hpp"
#include "machine_limits.hpp"
#include "process_memory.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using namespace llmq;

constexpr const char* kInstance = "bench";

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

struct ServeOptions {
    std::string llmqd = LLMQ_BENCH_LLMQD;
    int cpu = 1, threads_per_device = 0;
    std::optional<int> tensor, pipeline;
    int32_t prompt = 16, decode = 64;
    std::vector<int> client_counts{1, 8, 32};
    int repeat = 2, pings = 20000, limit_repeats = 2, start_timeout_s = 600;
    double idle_seconds = 10;
    int idle_spin_us = -1;  // -1: llmqd's default
};

// llmqd as a child process on its own temporary instance directory; stopped with SIGTERM.
class Daemon {
public:
    static std::unique_ptr<Daemon> start(const ServeOptions& o, const std::string& model, int32_t context,
                                         int max_clients) {
        auto d = std::unique_ptr<Daemon>(new Daemon());
        char pattern[] = "/tmp/llmq-bench-serve-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            std::perror("llmq-bench-serve: mkdtemp");
            return nullptr;
        }
        d->root_ = pattern;
        d->ipc_dir_ = d->root_ / "ipc";
        const fs::path config = d->root_ / "llmqd.toml";
        std::ofstream out(config);
        out << "[model]\npath = " << toml_string(model) << "\ncontext_length = " << context << "\n"
            << "[devices]\ncpu = " << o.cpu << "\ncpu_threads_per_device = " << o.threads_per_device << "\n";
        if (o.tensor || o.pipeline) {
            out << "[parallel]\n";
            if (o.tensor) out << "tensor = " << *o.tensor << "\n";
            if (o.pipeline) out << "pipeline = " << *o.pipeline << "\n";
        }
        out << "[scheduler]\nmax_running_sequences = " << max_clients << "\n"
            << "max_tokens_per_step = " << std::max(512, max_clients * o.prompt) << "\n"
            << "[ipc]\ndir = " << toml_string(d->ipc_dir_.string()) << "\ninstance = \"" << kInstance << "\"\n"
            << (o.idle_spin_us >= 0 ? "idle_spin_us = " + std::to_string(o.idle_spin_us) + "\n" : "")
            << "[log]\nlevel = \"warn\"\n";
        out.close();
        d->log_ = d->root_ / "llmqd.log";

        const std::string env_dir = "LLMQ_IPC_DIR=" + d->ipc_dir_.string();
        std::vector<char*> env;
        for (char** e = environ; *e != nullptr; ++e)
            if (std::strncmp(*e, "LLMQ_IPC_DIR=", 13) != 0) env.push_back(*e);
        env.push_back(const_cast<char*>(env_dir.c_str()));
        env.push_back(nullptr);
        std::string config_arg = config.string(), log_arg = d->log_.string();
        std::vector<char*> argv{const_cast<char*>(o.llmqd.c_str()), const_cast<char*>("--config"),
                                config_arg.data(), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log_arg.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        const int rc = ::posix_spawn(&d->pid_, o.llmqd.c_str(), &actions, nullptr, argv.data(), env.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            std::fprintf(stderr, "llmq-bench-serve: cannot start %s: %s (pass --llmqd PATH)\n",
                         o.llmqd.c_str(), std::strerror(rc));
            d->pid_ = 0;
            return nullptr;
        }
        return d;
    }

    ~Daemon() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
        std::error_code ignored;
        if (!root_.empty()) fs::remove_all(root_, ignored);
    }

    // Waits until a client can connect; false (with the daemon's log on stderr) when llmqd
    // exits first or the timeout passes.
    bool wait_until_serving(std::chrono::seconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                std::fprintf(stderr, "llmq-bench-serve: llmqd exited before serving; its log:\n%s\n",
                             log_text().c_str());
                return false;
            }
            if (connect()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::fprintf(stderr, "llmq-bench-serve: llmqd did not serve within %lld s; its log:\n%s\n",
                     static_cast<long long>(timeout.count()), log_text().c_str());
        return false;
    }

    std::unique_ptr<ipc::Client> connect(std::string* why = nullptr) const {
        ipc::ConnectOptions o;
        o.dir = ipc_dir_;
        o.instance = kInstance;
        o.client_name = "llmq-bench-serve";
        auto c = ipc::Client::connect(o);
        if (!c.ok()) {
            if (why) *why = c.error().message;
            return nullptr;
        }
        return std::move(*c);
    }

    pid_t pid() const { return pid_; }

    std::string log_text() const {
        std::ifstream in(log_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    Daemon() = default;
    pid_t pid_ = 0;
    fs::path root_, ipc_dir_, log_;
};

struct Percentiles {
    double p50 = 0, p99 = 0, mean = 0;
};

Percentiles percentiles(std::vector<double> us) {
    Percentiles p;
    if (us.empty()) return p;
    std::sort(us.begin(), us.end());
    double sum = 0;
    for (double v : us) sum += v;
    p.p50 = us[us.size() / 2];
    p.p99 = us[std::min(us.size() - 1, us.size() * 99 / 100)];
    p.mean = sum / double(us.size());
    return p;
}

std::optional<std::vector<double>> region_pings(ipc::Client& client, int samples) {
    std::vector<double> us;
    const int warmup = std::max(100, samples / 10);
    for (int i = 0; i < warmup + samples; ++i) {
        auto rtt = client.ping(std::chrono::milliseconds(5000));
        if (!rtt.ok()) {
            std::fprintf(stderr, "llmq-bench-serve: ping: %s\n", rtt.error().message.c_str());
            return std::nullopt;
        }
        if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(*rtt).count());
    }
    return us;
}

// Pings `gap` apart, so the daemon has spun out its window and sleeps when each arrives.
std::optional<std::vector<double>> spaced_pings(ipc::Client& client, int samples, std::chrono::microseconds gap) {
    std::vector<double> us;
    for (int i = 0; i < samples; ++i) {
        std::this_thread::sleep_for(gap);
        auto rtt = client.ping(std::chrono::milliseconds(5000));
        if (!rtt.ok()) {
            std::fprintf(stderr, "llmq-bench-serve: ping: %s\n", rtt.error().message.c_str());
            return std::nullopt;
        }
        us.push_back(std::chrono::duration<double, std::micro>(*rtt).count());
    }
    return us;
}

// One eventfd each way between two threads that block in read(): the round trip of a peer that
// sleeps, i.e. what answering from sleep costs on this machine (two wake-ups).
std::vector<double> eventfd_pings(int samples) {
    std::vector<double> us;
    const int to = ::eventfd(0, EFD_CLOEXEC), from = ::eventfd(0, EFD_CLOEXEC);
    if (to < 0 || from < 0) return us;
    std::atomic<bool> stop{false};
    std::thread echo([&] {
        uint64_t v;
        while (::read(to, &v, sizeof v) == sizeof v && !stop.load()) {
            v = 1;
            if (::write(from, &v, sizeof v) != sizeof v) break;
        }
    });
    const int warmup = std::max(100, samples / 10);
    for (int i = 0; i < warmup + samples; ++i) {
        uint64_t v = 1;
        const auto start = Clock::now();
        if (::write(to, &v, sizeof v) != sizeof v || ::read(from, &v, sizeof v) != sizeof v) break;
        if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    stop.store(true);
    uint64_t v = 1;
    (void)!::write(to, &v, sizeof v);
    echo.join();
    ::close(to);
    ::close(from);
    return us;
}

// A word in memory each way between two spinning threads: the floor of any round trip
// between two cores of this machine (what a daemon that spins can at best answer in).
std::vector<double> spinning_pings(int samples) {
    std::vector<double> us;
    alignas(64) std::atomic<uint64_t> ping{0};
    alignas(64) std::atomic<uint64_t> pong{0};
    const int total = std::max(100, samples / 10) + samples;
    std::thread echo([&] {
        for (uint64_t n = 1; n <= static_cast<uint64_t>(total); ++n) {
            while (ping.load(std::memory_order_acquire) != n) {
            }
            pong.store(n, std::memory_order_release);
        }
    });
    for (int i = 1; i <= total; ++i) {
        const auto start = Clock::now();
        ping.store(static_cast<uint64_t>(i), std::memory_order_release);
        while (pong.load(std::memory_order_acquire) != static_cast<uint64_t>(i)) {
        }
        if (i > total - samples) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    echo.join();
    return us;
}

// CPU time (user + system) a process has used, from /proc/PID/stat; -1 when unreadable.
double process_cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = text.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream fields(text.substr(paren + 2));
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::strtod(f.c_str(), nullptr);
        if (i == 15) stime = std::strtod(f.c_str(), nullptr);
    }
    return (utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

// One byte each way over a UNIX stream socketpair, echoed by a second thread: the floor of a
// socket-based protocol on this machine (two context switches when the threads sleep).
std::vector<double> socketpair_pings(int samples) {
    int fds[2];
    std::vector<double> us;
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return us;
    std::thread echo([fd = fds[1]] {
        char c;
        while (::read(fd, &c, 1) == 1)
            if (::write(fd, &c, 1) != 1) break;
    });
    const int warmup = std::max(100, samples / 10);
    char c = 'p';
    for (int i = 0; i < warmup + samples; ++i) {
        const auto start = Clock::now();
        if (::write(fds[0], &c, 1) != 1 || ::read(fds[0], &c, 1) != 1) break;
        if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    ::shutdown(fds[0], SHUT_RDWR);
    echo.join();
    ::close(fds[0]);
    ::close(fds[1]);
    return us;
}

struct ClientRun {
    std::vector<Clock::time_point> token_times;  // every token's arrival
    std::string error;
    Clock::time_point first() const { return token_times.front(); }
    Clock::time_point last() const { return token_times.back(); }
    long long tokens() const { return static_cast<long long>(token_times.size()); }
};

struct RoundFigures {
    double decode_tokens_per_s = 0;      // tokens after each client's first / decode window
    double end_to_end_tokens_per_s = 0;  // all tokens / (submit -> last token)
    double mean_first_token_ms = 0;      // submit -> first token, averaged over clients
    // While every client decodes: from the last client's first token to the first client's last
    // one, so that no prompt's prefill is inside the window. 0 when that window holds fewer
    // than three decode steps (raise --decode-tokens).
    double all_decoding_tokens_per_s = 0;
    double seconds = 0;  // submit -> last token
    std::string error;
};

std::vector<int32_t> prompt_tokens(int32_t count, int client, int round) {
    std::vector<int32_t> ids(static_cast<size_t>(count));
    uint32_t state = 2654435761u * static_cast<uint32_t>(client + 1) + 97u * static_cast<uint32_t>(round);
    for (int32_t& id : ids) {
        state = state * 1664525u + 1013904223u;
        id = 300 + static_cast<int32_t>((state >> 8) % 1000u);  // plain tokens of any vocab >= 1300
    }
    return ids;
}

RoundFigures run_clients(const Daemon& daemon, int clients, int32_t prompt, int32_t decode, int round) {
    std::vector<std::unique_ptr<ipc::Client>> connections;
    RoundFigures f;
    for (int c = 0; c < clients; ++c) {
        std::string why;
        connections.push_back(daemon.connect(&why));
        if (!connections.back()) {
            f.error = "connect: " + why;
            return f;
        }
    }
    std::vector<ClientRun> runs(static_cast<size_t>(clients));
    std::barrier start_line(clients + 1);
    Clock::time_point submitted;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            ipc::GenerateRequest r;
            r.prompt_tokens = prompt_tokens(prompt, c, round);
            r.prompt_is_tokens = true;
            r.add_bos = false;
            r.sampling.temperature = 0;
            r.max_tokens = decode;
            r.ignore_eos = true;
            ClientRun& run = runs[static_cast<size_t>(c)];
            ipc::Client& client = *connections[static_cast<size_t>(c)];
            start_line.arrive_and_wait();
            auto id = client.submit(r);
            if (!id.ok()) {
                run.error = "submit: " + id.error().message;
                return;
            }
            for (;;) {
                auto e = client.next_event(std::chrono::milliseconds(120000));
                if (!e.ok()) {
                    run.error = "next_event: " + e.error().message;
                    return;
                }
                if (e->kind == ipc::EventKind::token) {
                    run.token_times.push_back(Clock::now());
                } else if (e->kind == ipc::EventKind::error) {
                    run.error = "error event: " + e->text;
                    return;
                } else if (e->kind == ipc::EventKind::final) {
                    return;
                }
            }
        });
    }
    submitted = Clock::now();
    start_line.arrive_and_wait();
    for (auto& t : threads) t.join();
    Clock::time_point first = Clock::time_point::max(), last = submitted;
    long long after_first = 0, all = 0;
    double first_token_ms = 0;
    for (const ClientRun& r : runs) {
        if (!r.error.empty()) {
            f.error = r.error;
            return f;
        }
        if (r.tokens() == 0) {
            f.error = "a client got no tokens";
            return f;
        }
        first = std::min(first, r.first());
        last = std::max(last, r.last());
        after_first += r.tokens() - 1;
        all += r.tokens();
        first_token_ms += 1e3 * seconds_between(submitted, r.first());
    }
    if (last > first) f.decode_tokens_per_s = double(after_first) / seconds_between(first, last);
    f.seconds = seconds_between(submitted, last);
    f.end_to_end_tokens_per_s = double(all) / f.seconds;
    f.mean_first_token_ms = first_token_ms / clients;
    Clock::time_point all_started = Clock::time_point::min(), first_done = Clock::time_point::max();
    for (const ClientRun& r : runs) {
        all_started = std::max(all_started, r.first());
        first_done = std::min(first_done, r.last());
    }
    long long in_window = 0;
    for (const ClientRun& r : runs)
        in_window += std::count_if(r.token_times.begin(), r.token_times.end(), [&](Clock::time_point t) {
            return t > all_started && t <= first_done;
        });
    if (first_done > all_started && in_window >= 3LL * clients)
        f.all_decoding_tokens_per_s = double(in_window) / seconds_between(all_started, first_done);
    return f;
}

// The ping figures: idle back to back, idle but spaced past the daemon's spin, busy (a client
// generating meanwhile), beside the round trips of two sleeping and two spinning threads, and
// the idle daemon's CPU use.
bool ping_section(const Daemon& daemon, const ServeOptions& o) {
    auto pinger = daemon.connect();
    if (!pinger) {
        std::fprintf(stderr, "llmq-bench-serve: cannot connect to llmqd\n");
        return false;
    }
    auto idle = region_pings(*pinger, o.pings);
    if (!idle) return false;
    auto spaced = spaced_pings(*pinger, std::max(100, o.pings / 20), std::chrono::microseconds(2000));
    if (!spaced) return false;

    // Busy: another client generates while this one pings (as many samples as fit its run).
    std::vector<double> busy;
    {
        auto generator = daemon.connect();
        if (!generator) return false;
        ipc::GenerateRequest r;
        r.prompt_tokens = prompt_tokens(o.prompt, 0, 12345);
        r.prompt_is_tokens = true;
        r.add_bos = false;
        r.sampling.temperature = 0;
        r.max_tokens = o.decode;
        r.ignore_eos = true;
        // Requests one after the other until the pinger has its samples (or 60 s pass).
        std::atomic<bool> stop{false}, generating{false};
        std::thread gen([&] {
            while (!stop.load()) {
                if (!generator->submit(r).ok()) break;
                generating.store(true);
                for (;;) {
                    auto e = generator->next_event(std::chrono::milliseconds(120000));
                    if (!e.ok() || e->kind == ipc::EventKind::final || e->kind == ipc::EventKind::error) break;
                }
            }
            generating.store(false);
            stop.store(true);
        });
        const auto t0 = Clock::now();
        while (!generating.load() && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const int wanted = std::max(100, o.pings / 10);
        while (!stop.load() && static_cast<int>(busy.size()) < wanted && Clock::now() - t0 < std::chrono::seconds(60)) {
            auto rtt = pinger->ping(std::chrono::milliseconds(5000));
            if (!rtt.ok()) break;
            busy.push_back(std::chrono::duration<double, std::micro>(*rtt).count());
            std::this_thread::sleep_for(std::chrono::microseconds(500));  // pings, not a flood
        }
        stop.store(true);
        gen.join();
    }

    const Percentiles region = percentiles(*idle), apart = percentiles(*spaced), loaded = percentiles(busy);
    const Percentiles sleeping = percentiles(eventfd_pings(o.pings));
    const Percentiles spinning = percentiles(spinning_pings(o.pings));
    const Percentiles socket = percentiles(socketpair_pings(o.pings));
    std::printf("\nping round trip (us)                                  samples      p50      p99     mean\n");
    auto row = [](const char* what, size_t n, const Percentiles& p) {
        std::printf("  %-50s %7zu %8.2f %8.2f %8.2f\n", what, n, p.p50, p.p99, p.mean);
    };
    row("region, idle llmqd, back to back", idle->size(), region);
    row("region, idle llmqd, 2 ms apart (it sleeps)", spaced->size(), apart);
    row("region, busy llmqd (a client generating)", busy.size(), loaded);
    row("bound: eventfd, two sleeping threads", static_cast<size_t>(o.pings), sleeping);
    row("bound: memory word, two spinning threads", static_cast<size_t>(o.pings), spinning);
    row("UNIX socketpair, 1 byte each way, sleeping", static_cast<size_t>(o.pings), socket);
    std::printf("  idle p50 / sleeping-thread bound p50 = %.2f; idle p50 / spinning bound p50 = %.1f; "
                "target idle p50 <= 5 us: %s\n",
                region.p50 / sleeping.p50, region.p50 / spinning.p50, region.p50 <= 5.0 ? "met" : "NOT met");
    std::fflush(stdout);

    // Idle CPU: nothing at all, then a ping every 10 ms (each followed by a spin that finds
    // nothing: the budget's worst case at that rate).
    if (o.idle_seconds > 0) {
        const pid_t pid = daemon.pid();
        const auto window = std::chrono::duration<double>(o.idle_seconds);
        double before = process_cpu_seconds(pid);
        auto t0 = Clock::now();
        std::this_thread::sleep_for(window);
        const double idle_share = (process_cpu_seconds(pid) - before) / seconds_between(t0, Clock::now());
        before = process_cpu_seconds(pid);
        t0 = Clock::now();
        int pinged = 0;
        while (Clock::now() - t0 < window) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (pinger->ping(std::chrono::milliseconds(5000)).ok()) ++pinged;
        }
        const double pinged_share = (process_cpu_seconds(pid) - before) / seconds_between(t0, Clock::now());
        std::printf("idle CPU  llmqd used %.3f %% of a core over %.0f s idle and %.3f %% while pinged every 10 ms "
                    "(%d pings); idle bound 1 %%: %s\n",
                    100 * idle_share, o.idle_seconds, 100 * pinged_share, pinged,
                    idle_share < 0.01 ? "met" : "NOT met");
        std::fflush(stdout);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    bench::ModelChoice model_choice;
    ServeOptions o;
    CLI::App app{"llmq-bench-serve: llmqd's aggregate decode tokens/s with 1, 8 and 32 clients and "
                 "its ping round trip, beside the machine's limits measured in the same run."};
    bench::add_model_options(app, model_choice);
    app.add_option("--llmqd", o.llmqd, "the llmqd executable")->capture_default_str();
    app.add_option("--clients", o.client_counts, "client counts to run")->delimiter(',')->capture_default_str();
    app.add_option("--prompt-tokens", o.prompt, "prompt length of each client")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--decode-tokens", o.decode, "tokens each client generates (K)")->check(CLI::Range(2, 1 << 16))->capture_default_str();
    app.add_option("--cpu", o.cpu, "[devices] cpu")->check(CLI::Range(1, 1024))->capture_default_str();
    app.add_option("--threads-per-device", o.threads_per_device, "[devices] cpu_threads_per_device; 0 = cores / devices")
        ->check(CLI::Range(0, 1024))->capture_default_str();
    app.add_option("--tensor", o.tensor, "[parallel] tensor (default auto)")->check(CLI::Range(1, 1024));
    app.add_option("--pipeline", o.pipeline, "[parallel] pipeline (default auto)")->check(CLI::Range(1, 1024));
    app.add_option("--repeat", o.repeat, "rounds per client count; the best is printed")->check(CLI::Range(1, 100))->capture_default_str();
    app.add_option("--pings", o.pings, "ping samples (each way)")->check(CLI::Range(100, 10000000))->capture_default_str();
    app.add_option("--idle-seconds", o.idle_seconds, "how long the daemon's idle CPU use is measured (twice)")
        ->check(CLI::Range(0.0, 600.0))->capture_default_str();
    app.add_option("--idle-spin-us", o.idle_spin_us, "[ipc] idle_spin_us of llmqd (default: llmqd's)")
        ->check(CLI::Range(0, 10000));
    app.add_option("--limit-repeats", o.limit_repeats, "repetitions of each machine-limit probe")->check(CLI::Range(1, 20))->capture_default_str();
    app.add_option("--start-timeout", o.start_timeout_s, "seconds to wait for llmqd to serve")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    if (o.client_counts.empty() ||
        std::any_of(o.client_counts.begin(), o.client_counts.end(), [](int c) { return c < 1 || c > 256; })) {
        std::fprintf(stderr, "llmq-bench-serve: --clients: each count must be between 1 and 256\n");
        return 2;
    }
    const int max_clients = *std::max_element(o.client_counts.begin(), o.client_counts.end());

    auto model = bench::BenchModel::prepare(model_choice);
    if (!model) {
        std::fprintf(stderr, "llmq-bench-serve: %s\n", model.status().message().c_str());
        return 1;
    }
    auto cost = bench::token_cost(model->path());
    if (!cost) {
        std::fprintf(stderr, "llmq-bench-serve: %s\n", cost.status().message().c_str());
        return 1;
    }
    if (cost->n_vocab < 1300) {
        std::fprintf(stderr, "llmq-bench-serve: the prompts use token ids 300..1299; the model has %u\n",
                     cost->n_vocab);
        return 2;
    }
    const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = o.threads_per_device > 0 ? o.cpu * o.threads_per_device : std::max(hardware, o.cpu);

    std::printf("llmq-bench-serve\n");
    std::printf("model     %s%s: dim %u, layers %u, vocab %u, weights %s; a decode token reads %s\n",
                model->path().c_str(), model->temporary() ? " (made for this run)" : "", cost->n_embd,
                cost->n_layer, cost->n_vocab, cost->weight_dtype.c_str(),
                bench::format_bytes(cost->decode_weight_bytes).c_str());
    std::printf("daemon    %s, %d CPU device(s), %d thread(s); each client: %d prompt tokens, %d greedy tokens\n",
                o.llmqd.c_str(), o.cpu, threads, o.prompt, o.decode);
    std::fflush(stdout);

    // Limits before llmqd starts and again after it stops; the better of each is kept.
    bench::MachineLimits limits = bench::MachineLimits::measure(threads, o.limit_repeats);

    const int32_t context = (o.prompt + o.decode + 15) / 16 * 16;
    auto daemon = Daemon::start(o, model->path(), context, max_clients);
    if (!daemon) return 1;
    const auto load_start = Clock::now();
    if (!daemon->wait_until_serving(std::chrono::seconds(o.start_timeout_s))) return 1;
    std::printf("llmqd     serving after %.1f s; %s\n", seconds_between(load_start, Clock::now()),
                bench::ProcessMemory::of(daemon->pid()).to_text().c_str());

    if (auto c = daemon->connect()) {
        if (auto st = c->control("status", nlohmann::json::object(), std::chrono::seconds(10));
            st.ok() && st->contains("cpu_kernels"))
            std::printf("kernels   %s (llmqd's status)\n", (*st)["cpu_kernels"].dump().c_str());
    }
    if (!ping_section(*daemon, o)) return 1;

    // A warm-up request: first touches of the daemon's buffers are not part of any figure.
    if (RoundFigures w = run_clients(*daemon, 1, o.prompt, std::min<int32_t>(o.decode, 8), 999); !w.error.empty()) {
        std::fprintf(stderr, "llmq-bench-serve: warm-up: %s\n", w.error.c_str());
        return 1;
    }

    struct ClientFigures {
        int clients;
        RoundFigures best;
    };
    std::vector<ClientFigures> measured;
    for (int clients : o.client_counts) {
        RoundFigures best;
        for (int r = 0; r < o.repeat; ++r) {
            RoundFigures f = run_clients(*daemon, clients, o.prompt, o.decode, r);
            if (!f.error.empty()) {
                std::fprintf(stderr, "llmq-bench-serve: %d clients: %s\n", clients, f.error.c_str());
                return 1;
            }
            std::printf("  %d client(s), round %d: %.2f decode tok/s\n", clients, r + 1, f.decode_tokens_per_s);
            std::fflush(stdout);
            if (f.decode_tokens_per_s > best.decode_tokens_per_s) best = f;
        }
        measured.push_back({clients, best});
    }
    std::printf("llmqd     after the runs: %s\n", bench::ProcessMemory::of(daemon->pid()).to_text().c_str());
    daemon.reset();  // the limits again, with the daemon gone; the better of each is kept
    limits.keep_best(bench::MachineLimits::measure(threads, o.limit_repeats));
    std::printf("machine   %s (best of before and after)\n", limits.to_text().c_str());
    const double bandwidth_bound = limits.bandwidth_gbs * 1e9 / double(cost->decode_weight_bytes);
    const double token_flops = 2.0 * double(cost->layer_matmul_params + cost->lm_head_params);
    const double flop_bound = limits.gemm_gflops * 1e9 / token_flops;

    std::printf("\n%-8s %12s %12s %9s %12s %9s %12s %8s %8s   %s\n", "clients", "decode tok/s", "bound", "ratio",
                "all decoding", "ratio", "end-to-end", "work", "1st tok", "bound from");
    double one_client = 0, widest = 0, widest_all_decoding = 0, widest_bound = 0;
    int widest_count = 0;
    for (const auto& [clients, best] : measured) {
        const double bound = std::min(clients * bandwidth_bound, flop_bound);
        // The whole round's work: every prompt token and every generated token but the last
        // is one forward, at the GEMM rate, and no faster than one weight read per decode step.
        const double work_seconds =
            std::max(double(clients) * double(o.prompt + o.decode - 1) * token_flops / (limits.gemm_gflops * 1e9),
                     double(o.decode - 1) * double(cost->decode_weight_bytes) / (limits.bandwidth_gbs * 1e9));
        char all_decoding[32] = "n/a", all_ratio[32] = "n/a";
        if (best.all_decoding_tokens_per_s > 0) {
            std::snprintf(all_decoding, sizeof all_decoding, "%.2f", best.all_decoding_tokens_per_s);
            std::snprintf(all_ratio, sizeof all_ratio, "%.3f", best.all_decoding_tokens_per_s / bound);
        }
        std::printf("%-8d %12.2f %12.2f %9.3f %12s %9s %12.2f %8.3f %6.0fms   %s\n", clients,
                    best.decode_tokens_per_s, bound, best.decode_tokens_per_s / bound, all_decoding, all_ratio,
                    best.end_to_end_tokens_per_s, work_seconds / best.seconds, best.mean_first_token_ms,
                    clients * bandwidth_bound <= flop_bound ? "clients x bandwidth / weight bytes"
                                                            : "GEMM rate / (2 x parameters)");
        std::fflush(stdout);
        if (clients == 1) one_client = best.decode_tokens_per_s;
        if (clients > widest_count) {
            widest_count = clients;
            widest = best.decode_tokens_per_s;
            widest_all_decoding = best.all_decoding_tokens_per_s;
            widest_bound = bound;
        }
    }
    std::printf("\ncolumns   decode: tokens after each client's first, over first first token -> last token (other\n"
                "          clients' prefill included); all decoding: the same while every client decodes (last\n"
                "          first token -> first last token; n/a when that holds < 3 steps: raise --decode-tokens);\n"
                "          work: the round's FLOPs (prompts + tokens) at the GEMM rate, or its decode steps' weight\n"
                "          reads if more, over submit -> last token\n");
    std::printf("\nbounds    1 client: %.2f tok/s (bandwidth %.2f GB/s / %s per token); FLOP bound %.1f tok/s "
                "(%.1f GFLOP/s / %.2f GFLOP per token)\n",
                bandwidth_bound, limits.bandwidth_gbs, bench::format_bytes(cost->decode_weight_bytes).c_str(),
                flop_bound, limits.gemm_gflops,
                token_flops / 1e9);
    if (one_client > 0 && widest_count > 1)
        std::printf("scaling   %d clients / 1 client = %.2f; target >= 3: %s\n", widest_count, widest / one_client,
                    widest / one_client >= 3.0 ? "met" : "NOT met");
    if (widest_count > 1) {
        if (widest_all_decoding > 0)
            std::printf("batching  %d clients all decoding: %.2f tok/s = %.3f of their bound; target >= 0.7: %s\n",
                        widest_count, widest_all_decoding, widest_all_decoding / widest_bound,
                        widest_all_decoding / widest_bound >= 0.7 ? "met" : "NOT met");
        else
            std::printf("batching  %d clients were never all decoding for 3 steps: raise --decode-tokens\n",
                        widest_count);
    }
    return 0;
}

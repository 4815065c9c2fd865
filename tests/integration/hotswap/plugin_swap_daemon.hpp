// A real llmqd for the hot-swap tests: a private folder (model, config, IPC dir, log), the
// daemon started with posix_spawn and stopped (SIGTERM, then SIGKILL) when the object goes,
// clients connected to it, and the plugin commands driven the way `llmq plugins` drives them.
//
// Paths come from the build (meson.build): LLMQD_PATH, MAKE_MODEL_PATH, PROBE_PATH, LLMQ_PATH,
// FIXTURE_DIR, SECOND_BUILD_DIR; the built plugins from $LLMQ_PLUGIN_DIR.
// Set LLMQ_TEST_KEEP=1 to keep the folder (and the daemon's log) after the test.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "llmq/ipc/client.hpp"

extern char** environ;

namespace swaptest {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

inline std::string plugin_dir() {
    const char* d = std::getenv("LLMQ_PLUGIN_DIR");
    return d ? d : "";
}
inline std::string built(const std::string& name) { return plugin_dir() + "/llmq-" + name + ".so"; }
inline std::string second_build(const std::string& name) {
    return std::string(SECOND_BUILD_DIR) + "/llmq-" + name + "-second-build.so";
}
inline std::string fixture(const std::string& defect) {
    return std::string(FIXTURE_DIR) + "/test-plugin-" + defect + ".so";
}

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// Run a program to its end; returns its exit status (-1 when it could not start or was killed).
inline int run_program(const std::vector<std::string>& args, const std::string& out_path) {
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct DaemonSetup {
    std::string model_args = "--dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128";
    std::string extra_toml;         // more config, e.g. "[devices]\ncpu = 2\n"
    std::string plugins_toml;       // lines of [plugins] (dir, watch, ...)
};

class Daemon {
public:
    explicit Daemon(const DaemonSetup& setup) {
        setenv("LLMQ_PLUGIN_PROBE", PROBE_PATH, 1);
        dir_ = fs::temp_directory_path() / ("llmq-hotswap-" + std::to_string(getpid()) + "-" +
                                            std::to_string(counter()++));
        fs::create_directories(dir_ / "ipc");
        fs::permissions(dir_ / "ipc", fs::perms::owner_all, fs::perm_options::replace);
        const std::string model = (dir_ / "model.gguf").string();
        std::vector<std::string> make = {MAKE_MODEL_PATH, "--out", model};
        std::istringstream words(setup.model_args);
        for (std::string w; words >> w;) make.push_back(w);
        REQUIRE(run_program(make, (dir_ / "make-model.log").string()) == 0);
        std::ofstream(dir_ / "llmqd.toml") << "[model]\npath = \"" << model << "\"\n"
                                           << "[ipc]\ninstance = \"hotswap\"\ndir = \"" << (dir_ / "ipc").string()
                                           << "\"\n[plugins]\n" << setup.plugins_toml << "\n" << setup.extra_toml;
        std::string exe = LLMQD_PATH, flag = "--config", cfg = (dir_ / "llmqd.toml").string();
        char* argv[] = {exe.data(), flag.data(), cfg.data(), nullptr};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        const std::string log = (dir_ / "llmqd.log").string();
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        REQUIRE(posix_spawn(&pid_, argv[0], &fa, nullptr, argv, environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        // Ready when a client gets through.
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        for (;;) {
            REQUIRE_MESSAGE(alive(), "llmqd exited during start:\n" << this->log());
            auto c = try_connect("probe-ready");
            if (c) {
                control_ = std::move(c);
                break;
            }
            REQUIRE_MESSAGE(Clock::now() < deadline, "llmqd did not start within 30 s:\n" << this->log());
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    ~Daemon() {
        control_.reset();
        if (pid_ > 0 && alive()) {
            kill(pid_, SIGTERM);
            for (int i = 0; i < 1000 && alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (alive()) kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (!std::getenv("LLMQ_TEST_KEEP")) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        } else {
            MESSAGE("kept " << dir_.string());
        }
    }

    bool alive() {
        if (exited_) return false;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) exited_ = true;
        return !exited_;
    }
    pid_t pid() const { return pid_; }
    const fs::path& dir() const { return dir_; }
    std::string log() const { return read_file(dir_ / "llmqd.log"); }
    std::string ipc_dir() const { return (dir_ / "ipc").string(); }

    std::unique_ptr<llmq::ipc::Client> try_connect(const std::string& name) {
        llmq::ipc::ConnectOptions o;
        o.instance = "hotswap";
        o.dir = dir_ / "ipc";
        o.client_name = name;
        auto c = llmq::ipc::Client::connect(o);
        if (!c) return nullptr;
        return std::move(*c);
    }
    std::unique_ptr<llmq::ipc::Client> connect(const std::string& name) {
        auto c = try_connect(name);
        REQUIRE_MESSAGE(c != nullptr, "cannot connect to llmqd");
        return c;
    }

    // A control command on the daemon's control connection; fails the test on an error.
    json control(const std::string& command, const json& args) {
        auto r = control_->control(command, args, std::chrono::seconds(10));
        REQUIRE_MESSAGE(r.ok(), command << ": " << r.error().message);
        return *r;
    }

    // Queue a job and wait for it (bounded); returns its reports.
    json run_job(const std::string& command, const json& args) {
        const uint64_t id = control(command, args)["job"].get<uint64_t>();
        const auto deadline = Clock::now() + std::chrono::seconds(60);
        for (;;) {
            json j = control("plugins.job", {{"job", id}});
            if (j["state"] == "done") return j["reports"];
            REQUIRE_MESSAGE(Clock::now() < deadline, "job " << id << " not done after 60 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    json swap(const std::string& kind, const std::string& path) {
        json reports = run_job("plugins.swap", {{"kind", kind}, {"path", path}});
        REQUIRE(reports.size() == 1);
        return reports[0];
    }
    // The listed plugin of `kind`.
    json plugin(const std::string& kind) {
        const json list = control("plugins.list", json::object());
        for (const auto& p : list["plugins"])
            if (p["kind"] == kind) return p;
        FAIL("no " << kind << " plugin listed");
        return {};
    }

private:
    static int& counter() {
        static int n = 0;
        return n;
    }
    fs::path dir_;
    pid_t pid_ = -1;
    bool exited_ = false;
    std::unique_ptr<llmq::ipc::Client> control_;
};

// Client threads that run until stop(); stopped and joined when the object goes, also when a
// failed REQUIRE unwinds the test.
class Background {
public:
    ~Background() { stop(); }
    template <typename F>
    void start(F body) {
        threads_.emplace_back([this, body] { body(*this); });
    }
    bool running() const { return running_.load(); }
    void stop() {
        running_.store(false);
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

private:
    std::atomic<bool> running_{true};
    std::vector<std::thread> threads_;
};

// One generate request to its end on `client`: its tokens, or the error text.
struct Outcome {
    std::vector<int32_t> tokens;
    std::string error;
    std::vector<Clock::time_point> token_times;
};

inline llmq::ipc::GenerateRequest greedy_request(const std::vector<int32_t>& prompt, int32_t max_tokens) {
    llmq::ipc::GenerateRequest r;
    r.prompt_is_tokens = true;
    r.prompt_tokens = prompt;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.sampling.temperature = 0.0f;
    r.sampling.seed = 7;
    r.sampling.seed_set = true;
    return r;
}

inline Outcome generate(llmq::ipc::Client& client, const llmq::ipc::GenerateRequest& request) {
    Outcome out;
    auto id = client.submit(request);
    if (!id) {
        out.error = "submit: " + id.error().message;
        return out;
    }
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    for (;;) {
        if (Clock::now() > deadline) {
            out.error = "no final event within 60 s";
            return out;
        }
        auto e = client.next_event(std::chrono::milliseconds(200));
        if (!e) {
            if (e.error().code == llmq::ipc::ErrorCode::timeout) continue;
            out.error = "next_event: " + e.error().message;
            return out;
        }
        if (e->request_id != *id) continue;
        if (e->kind == llmq::ipc::EventKind::token) {
            out.token_times.push_back(Clock::now());
            if (e->token_id >= 0) out.tokens.push_back(e->token_id);
        } else if (e->kind == llmq::ipc::EventKind::final) {
            return out;
        } else if (e->kind == llmq::ipc::EventKind::error) {
            out.error = "error event: " + e->text;
            return out;
        }
    }
}

// Distinct prompts, one per client.
inline std::vector<int32_t> prompt_for(int client) {
    std::vector<int32_t> p = {1};
    for (int i = 0; i < 4 + client % 7; ++i) p.push_back(3 + (client * 37 + i * 11) % 250);
    return p;
}

}  // namespace swaptest

// llmq plugins list|swap|reload: the daemon's kernel plugins, and replacing them while it serves
// (runtime/include/llmq/runtime/plugin_commands.hpp has the commands behind them).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "cli_common.hpp"
#include "commands.hpp"
#include "llmq/ipc/client.hpp"

namespace llmq::cli {

namespace {

using json = nlohmann::json;

struct PluginFlags {
    std::string instance = "default";
    bool json = false;
    double timeout_s = 120;
};

ipc::Result<std::unique_ptr<ipc::Client>> connect(const PluginFlags& f) {
    ipc::ConnectOptions o;
    o.instance = f.instance;
    o.client_name = "llmq plugins";
    return ipc::Client::connect(o);
}

std::string ms_text(double ms) {
    char b[32];
    std::snprintf(b, sizeof b, ms < 10 ? "%.2f ms" : "%.1f ms", ms);
    return b;
}

// "swapped gemm: ..." plus one line of stage timings, or "refused ...".
void print_report(const json& r) {
    std::cout << (r.value("swapped", false) ? "swapped " : "refused ") << r.value("message", std::string()) << "\n";
    std::string stages;
    for (const auto& s : r.value("stages", json::array()))
        stages += (stages.empty() ? "" : " · ") + s.value("stage", std::string()) + " " + ms_text(s.value("ms", 0.0));
    if (!stages.empty()) std::cout << "  " << stages << "  (total " << ms_text(r.value("total_ms", 0.0)) << ")\n";
}

// Queue a job with `command`, wait for it, print its reports. Exit 0 when every swap happened.
int run_job(const PluginFlags& f, const std::string& name, const std::string& command, const json& args) {
    auto client = connect(f);
    if (!client) return fail(name, client.error().message);
    auto queued = (*client)->control(command, args, std::chrono::seconds(10));
    if (!queued) return fail(name, queued.error().message);
    const uint64_t id = (*queued)["job"].get<uint64_t>();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(f.timeout_s);
    for (;;) {
        auto job = (*client)->control("plugins.job", {{"job", id}}, std::chrono::seconds(10));
        if (!job) return fail(name, job.error().message);
        if ((*job)["state"] == "done") {
            bool all = true;
            for (const auto& r : (*job)["reports"]) all = all && r.value("swapped", false);
            if (f.json) print_line(job->dump());
            else
                for (const auto& r : (*job)["reports"]) print_report(r);
            return all ? 0 : 1;
        }
        if (std::chrono::steady_clock::now() > deadline)
            return fail(name, "job " + std::to_string(id) + " still " + (*job)["state"].get<std::string>() +
                                  " after " + std::to_string(f.timeout_s) + " s; it goes on in the daemon "
                                  "(see llmq plugins list)");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void add_common(CLI::App& app, PluginFlags& f) {
    app.add_option("--instance", f.instance, "llmqd instance name ($LLMQ_IPC_DIR or the default folder)")
        ->capture_default_str();
    app.add_flag("--json", f.json, "Print JSON");
}

}  // namespace

Command add_plugins(CLI::App& root) {
    struct Flags {
        PluginFlags common;
        std::string kind, path;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("plugins", "List or replace the kernel plugins of a running llmqd");
    app->require_subcommand(1);
    add_common(*app, f->common);
    CLI::App* list = app->add_subcommand("list", "Kind, backend, name, version, path, loaded since, calls, errors");
    add_common(*list, f->common);
    CLI::App* swap = app->add_subcommand(
        "swap", "Load KIND's plugin from PATH in place of the current one (probe, load, init, canary, publish)");
    swap->add_option("kind", f->kind, "gemm | attention | vision")->required();
    swap->add_option("path", f->path, "a .so path, or a plugin name looked up in [plugins] dir")->required();
    swap->add_option("--timeout", f->common.timeout_s, "Seconds to wait for the swap")->capture_default_str();
    add_common(*swap, f->common);
    CLI::App* reload = app->add_subcommand("reload", "Load KIND's plugin (or every plugin) again from its file");
    reload->add_option("kind", f->kind, "gemm | attention | vision (default: all)");
    reload->add_option("--timeout", f->common.timeout_s, "Seconds to wait for the reload")->capture_default_str();
    add_common(*reload, f->common);
    set_example(*app, "  llmq plugins list\n  llmq plugins swap gemm ./build/plugins/llmq-gemm-cpu.so\n  llmq plugins reload attention");
    set_example(*list, "  llmq plugins list --json");
    set_example(*swap, "  llmq plugins swap gemm gemm-cpu\n  llmq plugins swap attention /opt/llmq/llmq-attention-fast.so");
    set_example(*reload, "  llmq plugins reload\n  llmq plugins reload gemm");

    return [f, list, swap, reload]() -> int {
        const PluginFlags& c = f->common;
        if (swap->parsed()) {
            // The daemon runs elsewhere: a path is sent absolute; a bare name stays a name.
            std::string path = f->path;
            std::error_code ec;
            if (path.find('/') != std::string::npos || std::filesystem::exists(path, ec))
                path = std::filesystem::absolute(path, ec).lexically_normal().string();
            return run_job(c, "plugins swap", "plugins.swap", {{"kind", f->kind}, {"path", path}});
        }
        if (reload->parsed()) {
            json args = json::object();
            if (!f->kind.empty()) args["kind"] = f->kind;
            return run_job(c, "plugins reload", "plugins.reload", args);
        }
        (void)list;
        auto client = connect(c);
        if (!client) return fail("plugins list", client.error().message);
        auto r = (*client)->control("plugins.list", json::object(), std::chrono::seconds(10));
        if (!r) return fail("plugins list", r.error().message);
        if (c.json) {
            print_line(r->dump());
            return 0;
        }
        std::printf("%-10s %-7s %-16s %-9s %-25s %10s %7s  %s\n", "KIND", "BACKEND", "NAME", "VERSION",
                    "LOADED SINCE", "CALLS", "ERRORS", "PATH");
        for (const auto& p : (*r)["plugins"])
            std::printf("%-10s %-7s %-16s %-9s %-25s %10llu %7llu  %s\n", p.value("kind", "").c_str(),
                        p.value("backend", "").c_str(), p.value("name", "").c_str(), p.value("version", "").c_str(),
                        p.value("loaded_since", "").c_str(),
                        static_cast<unsigned long long>(p.value("calls", uint64_t(0))),
                        static_cast<unsigned long long>(p.value("errors", uint64_t(0))), p.value("path", "").c_str());
        std::printf("probe %s, watch %s\n", (*r)["probe"].get<bool>() ? "on" : "off",
                    (*r)["watch"].get<bool>() ? "on" : "off");
        return 0;
    };
}

}  // namespace llmq::cli

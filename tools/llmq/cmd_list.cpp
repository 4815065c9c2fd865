// llmq list: the llmqd instances this user can reach, found by their sockets in the folders a
// client looks in (instance_directory.hpp: $LLMQ_IPC_DIR, else the user's folder and /run/llmq),
// each asked for its status.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.hpp"
#include "commands.hpp"
#include "llmq/ipc/client.hpp"
#include "llmq/ipc/instance_directory.hpp"

namespace llmq::cli {

Command add_list(CLI::App& root) {
    struct Flags {
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("list", "Show the running llmqd instances (pid, model, uptime, clients)");
    app->add_flag("--json", f->json, "Print JSON: one object per instance");
    set_example(*app, "  llmq list\n  LLMQ_IPC_DIR=/run/llmq llmq list --json");
    return [f]() -> int {
        nlohmann::json instances = nlohmann::json::array();
        size_t unreachable = 0;
        const auto dirs = ipc::client_ipc_dirs();
        for (const auto& dir : dirs) {
            std::error_code ec;
            for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
                const std::string file = entry.path().filename().string();
                if (file.size() <= 10 || file.rfind("llmq-", 0) != 0 || !file.ends_with(".sock")) continue;
                ipc::ConnectOptions o;
                o.dir = dir;
                o.instance = file.substr(5, file.size() - 10);
                o.client_name = "llmq list";
                o.timeout = std::chrono::milliseconds(2000);
                auto client = ipc::Client::connect(o);
                auto status = client ? (*client)->control("status", nlohmann::json::object(), std::chrono::seconds(5))
                                     : ipc::Result<nlohmann::json>(client.error());
                if (!status) {  // a socket left by a killed daemon, or one closed to this user
                    ++unreachable;
                    continue;
                }
                const nlohmann::json& s = *status;
                instances.push_back({{"instance", o.instance}, {"dir", dir.string()}, {"pid", s.value("pid", 0)},
                                     {"model", s.contains("model") ? s["model"].value("name", "") : ""},
                                     {"uptime_s", s.value("uptime_s", 0.0)}, {"clients", s.value("clients", 0)},
                                     {"draining", s.value("draining", false)}});
            }
        }
        if (f->json) {
            for (const auto& i : instances) print_line(i.dump());
            return kExitOk;
        }
        if (instances.empty()) {
            std::string where;
            for (const auto& d : dirs) where += (where.empty() ? "" : " and ") + d.string();
            print_line("no llmqd instance is running for this user (looked in " + where + ")");
        } else {
            std::printf("%-16s %8s  %-24s %-14s %7s  %s\n", "INSTANCE", "PID", "MODEL", "UPTIME", "CLIENTS", "FOLDER");
            for (const auto& i : instances)
                std::printf("%-16s %8d  %-24s %-14s %7d  %s%s\n", i["instance"].get<std::string>().c_str(),
                            i["pid"].get<int>(), i["model"].get<std::string>().c_str(),
                            duration_text(i["uptime_s"].get<double>()).c_str(), i["clients"].get<int>(),
                            i["dir"].get<std::string>().c_str(), i["draining"].get<bool>() ? " (draining)" : "");
        }
        if (unreachable > 0)
            std::fprintf(stderr, "llmq list: %zu socket(s) did not answer (a stopped daemon's, or closed to this user)\n",
                         unreachable);
        return kExitOk;
    };
}

}  // namespace llmq::cli

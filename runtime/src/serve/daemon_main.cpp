#include "llmq/runtime/daemon.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>

#include "llmq/runtime/config.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/mpi_world.hpp"
#include "llmq/runtime/server.hpp"

namespace llmq {

int daemon_main(int argc, char** argv, const char* program) {
    block_stop_signals();  // threads started from here on (MPI's too) inherit the mask
    // A closed stderr pipe (the terminal or journal reader went away) must not kill a daemon
    // that serves others: writes fail with EPIPE instead, and the logger carries on.
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"llmqd: the llmq daemon. Keeps a model loaded and serves local clients through "
                 "shared memory.",
                 program};
    std::string config_path, model, instance, log_level;
    bool print_config_flag = false;
    std::optional<uint32_t> ctx_size;
    std::optional<int> threads;
    // The short flags of llmq run (and llama.cpp): -c is the context, so --config has none.
    app.add_option("--config", config_path, "TOML config file (every key optional)");
    app.add_option("--model,-m", model, "GGUF model (overrides [model] path)");
    app.add_option("--ctx-size,-c", ctx_size, "Context length in tokens (overrides [model] context_length)")
        ->check(CLI::Range(1u, 1u << 24));
    app.add_option("--threads,-t", threads, "CPU threads per device (overrides [devices] cpu_threads_per_device)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--instance", instance, "Instance name (overrides [ipc] instance)");
    app.add_option("--log-level", log_level, "error|warn|info|debug (overrides [log] level)");
    app.add_flag("--print-config", print_config_flag, "Print every key with its value and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);  // prints the help, the version or the error
        return rc == 0 ? 0 : 2;      // a usage error, as llmq's
    }
    Config config;
    if (!config_path.empty()) {
        auto c = load_config_file(config_path);
        if (!c) {
            std::cerr << program << ": " << c.status().message() << "\n";
            return 2;
        }
        config = *c;
    }
    if (!model.empty()) config.model.path = model;
    if (ctx_size) config.model.context_length = *ctx_size;
    if (threads) config.devices.cpu_threads_per_device = *threads;
    if (!instance.empty()) config.ipc.instance = instance;
    if (!log_level.empty() && !log::parse_level(log_level, &config.log.level)) {
        std::cerr << program << ": --log-level " << log_level << ": not one of error|warn|info|debug\n";
        return 2;
    }
    if (Status s = validate_config(config); !s.ok()) {
        std::cerr << program << ": " << s.message() << "\n";
        return 2;
    }
    if (print_config_flag) {
        std::fputs(print_config(config).c_str(), stdout);
        return 0;
    }
    log::set_level(config.log.level);
    log::set_json(config.log.json);
    if (std::string why; !log::set_file(config.log.file, &why)) {
        std::cerr << program << ": [log] file: " << why << "\n";
        return 2;
    }
    std::unique_ptr<MpiWorld> world;
    if (MpiWorld::launched_by_mpirun()) {
        auto w = MpiWorld::init(&argc, &argv, std::chrono::seconds(120));
        if (!w) {
            log::error(w.status().message());
            return 1;
        }
        world = std::move(*w);
        log::info("MPI rank " + std::to_string(world->rank()) + " of " + std::to_string(world->size()));
    }
    ServerOptions options;
    options.config = config;
    options.config_path = config_path;
    return run_server(options, world.get());
}

}  // namespace llmq

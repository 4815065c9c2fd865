// llmq serve: run the daemon in this process, with llmqd's flags.
#include "cli_common.hpp"
#include "commands.hpp"
#include "llmq/runtime/daemon.hpp"

#include <string>
#include <vector>

namespace llmq::cli {

Command add_serve(CLI::App& root) {
    auto args = std::make_shared<std::vector<std::string>>();
    CLI::App* app = root.add_subcommand("serve", "Run llmqd in the foreground (same flags as llmqd)");
    app->prefix_command();  // pass every following argument through
    app->allow_extras();
    set_example(*app, "  llmq serve --config llmq.toml\n  llmq serve --model model.gguf --log-level info");
    return [app, args]() -> int {
        std::vector<std::string> rest = app->remaining();
        std::vector<char*> argv;
        std::string program = "llmq serve";
        argv.push_back(program.data());
        for (auto& a : rest) argv.push_back(a.data());
        argv.push_back(nullptr);
        return daemon_main(static_cast<int>(argv.size() - 1), argv.data(), "llmq serve");
    };
}

}  // namespace llmq::cli

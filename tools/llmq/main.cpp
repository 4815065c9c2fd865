// llmq: the command-line client. In-process commands (run, tokenize, inspect, plan) load
// what they need themselves; the others talk to a running llmqd through its instance socket
// and shared memory.
#include <CLI/CLI.hpp>
#include <iostream>
#include <vector>

#include "commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"llmq: a resident LLM inference runtime (client and tools)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "llmq 0.1.0");
    std::vector<std::pair<CLI::App*, llmq::cli::Command>> commands;
    auto add = [&](llmq::cli::Command (*f)(CLI::App&)) {
        const size_t before = app.get_subcommands({}).size();
        llmq::cli::Command c = f(app);
        commands.emplace_back(app.get_subcommands({})[before], std::move(c));
    };
    add(llmq::cli::add_run);
    add(llmq::cli::add_tokenize);
    add(llmq::cli::add_inspect);
    add(llmq::cli::add_plan);
    add(llmq::cli::add_quantize);
    add(llmq::cli::add_perplexity);
    add(llmq::cli::add_generate);
    add(llmq::cli::add_status);
    add(llmq::cli::add_chat);
    add(llmq::cli::add_plugins);
    add(llmq::cli::add_serve);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    for (auto& [sub, run] : commands)
        if (sub->parsed()) return run();
    return 1;
}

// llmq: the command-line client. In-process commands (run, tokenize, inspect, plan) load
// what they need themselves; the others talk to a running llmqd through its instance socket
// and shared memory.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"

namespace {

// Every subcommand, in the order `llmq --help` lists them. A new one adds its add_* here.
constexpr llmq::cli::Command (*kSubcommands[])(CLI::App&) = {
    llmq::cli::add_run,     llmq::cli::add_generate, llmq::cli::add_chat,   llmq::cli::add_status,
    llmq::cli::add_list,    llmq::cli::add_plugins,  llmq::cli::add_serve,  llmq::cli::add_tokenize,
    llmq::cli::add_inspect, llmq::cli::add_plan,     llmq::cli::add_quantize, llmq::cli::add_perplexity,
};

std::vector<std::string> subcommand_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    return names;
}

std::vector<std::string> flag_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::Option* o : app.get_options()) {
        for (const auto& l : o->get_lnames()) names.push_back("--" + l);
        for (const auto& s : o->get_snames()) names.push_back("-" + s);
    }
    return names;
}

CLI::App* find_subcommand(CLI::App& app, const std::string& name) {
    for (CLI::App* sub : app.get_subcommands({}))
        if (sub->check_name(name)) return sub;
    return nullptr;
}

std::string did_you_mean(const std::string& closest) {
    return closest.empty() ? std::string() : " (did you mean '" + closest + "'?)";
}

// A parse error as a usage error (exit 2): an unknown subcommand or flag names the closest
// known one; anything else is CLI11's message, under the subcommand it concerns.
int report_usage(CLI::App& root, int argc, char** argv, const CLI::ParseError& e) {
    CLI::App* app = &root;
    std::string path = "llmq";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.empty() || arg[0] == '-') continue;
        if (CLI::App* sub = find_subcommand(*app, arg)) {
            app = sub;
            path += " " + arg;
        } else if (app == &root) {
            std::cerr << "llmq: unknown command '" << arg << "'" << did_you_mean(llmq::cli::closest_name(arg, subcommand_names(root)))
                      << "; see llmq --help\n";
            return llmq::cli::kExitUsage;
        }
    }
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.size() < 2 || arg[0] != '-' || arg == "--") continue;
        if (const auto eq = arg.find('='); eq != std::string::npos) arg.resize(eq);
        const std::string name = arg.rfind("--", 0) == 0 ? arg.substr(2) : arg.substr(1);
        if (arg.rfind("--", 0) != 0 && name.size() != 1) continue;  // -p5 style: leave to CLI11
        if (app->get_option_no_throw(arg) != nullptr || root.get_option_no_throw(arg) != nullptr) continue;
        if (std::isdigit(static_cast<unsigned char>(name[0]))) continue;  // a negative number value
        // A one-letter flag is one edit from every other: no guess for those.
        const std::string guess = arg.size() > 2 ? llmq::cli::closest_name(arg, flag_names(*app)) : "";
        std::cerr << path << ": unknown flag '" << arg << "'" << did_you_mean(guess)
                  << "; see " << path << " --help\n";
        return llmq::cli::kExitUsage;
    }
    std::cerr << path << ": " << e.what() << "; see " << path << " --help\n";
    return llmq::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"llmq: a resident LLM inference runtime (client and tools)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "llmq 0.1.0");
    app.footer("\n" + llmq::cli::exit_code_policy() + "\nEvery subcommand has --help with an example.");
    std::vector<std::pair<CLI::App*, llmq::cli::Command>> commands;
    for (auto add : kSubcommands) {
        const size_t before = app.get_subcommands({}).size();
        llmq::cli::Command c = add(app);
        commands.emplace_back(app.get_subcommands({})[before], std::move(c));
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return report_usage(app, argc, argv, e);
    }
    for (auto& [sub, run] : commands)
        if (sub->parsed()) return run();
    return llmq::cli::kExitUsage;
}

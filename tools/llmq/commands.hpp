// The llmq subcommands. Each add_* registers its flags on the root app and returns a
// function that runs it (called only when that subcommand was given) and returns the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace llmq::cli {

using Command = std::function<int()>;

Command add_run(CLI::App& root);        // in-process generation
Command add_tokenize(CLI::App& root);
Command add_inspect(CLI::App& root);
Command add_plan(CLI::App& root);
Command add_quantize(CLI::App& root);  // convert a GGUF model's weights
Command add_perplexity(CLI::App& root); // score a text file
Command add_generate(CLI::App& root);   // through a running llmqd
Command add_status(CLI::App& root);
Command add_list(CLI::App& root);       // the instances this user can reach
Command add_chat(CLI::App& root);
Command add_plugins(CLI::App& root);
Command add_serve(CLI::App& root);      // = llmqd

}  // namespace llmq::cli

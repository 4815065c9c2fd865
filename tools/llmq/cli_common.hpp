// Pieces shared by the llmq subcommands: sampling flags, config loading, JSON Lines output.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmq/runtime/config.hpp"

namespace llmq::cli {

// Exit codes of every subcommand (printed by `llmq --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;  // the command ran and failed (or a plan does not fit)
inline constexpr int kExitUsage = 2;         // bad flags or arguments; nothing was done
inline constexpr int kExitInterrupted = 130; // Ctrl-C cancelled a generation
std::string exit_code_policy();              // the text of the table above, for --help

// "Example:" lines under a subcommand's --help.
void set_example(CLI::App& app, const std::string& example);

// Where a command's model and its setup come from: --model/-m, --config (no short flag),
// --ctx-size/-c, --threads/-t. model_config() is the one place these become a Config.
struct ModelFlags {
    std::string model;
    std::string config;
    std::optional<uint32_t> ctx_size;
    std::optional<int> threads;
};
// `model_help` describes --model for this command; ctx/threads only where they matter.
void add_model_flags(CLI::App& app, ModelFlags& flags, const std::string& model_help, bool runs_model);
// The --config file (or the defaults) with the flags applied over it.
Expected<Config> model_config(const ModelFlags& flags);

// Sampling flags as `llmq run` and `llmq generate` take them.
struct SamplingFlags {
    int32_t max_tokens = 128;
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    int64_t seed = -1;  // -1 = random
    std::vector<std::string> stop;
    bool ignore_eos = false;
};
void add_sampling_flags(CLI::App& app, SamplingFlags& flags);

// One generated piece as a JSON Lines object: {"token": id, "text": piece[, "logprob": x]}.
nlohmann::json token_json(int32_t token, const std::string& text, std::optional<float> logprob);

// Write one line to stdout and flush (streaming).
void print_line(const std::string& line);
void print_text(const std::string& text);

// The summary line `llmq run` and `llmq generate` print to stderr after the text:
// "[5 prompt tokens, 812.3 tok/s prefill; 64 generated, 95.1 tok/s decode; length]".
std::string stats_line(size_t prompt_tokens, double prefill_tokens_per_s, size_t generated,
                       double decode_tokens_per_s, const std::string& finish_reason);

// "42 s", "12 min 3 s", "3 h 12 min", "2 d 5 h".
std::string duration_text(double seconds);

// The candidate closest to `word` by edit distance, or "" when none is close enough to be a
// likely typo (for "did you mean ...").
std::string closest_name(const std::string& word, const std::vector<std::string>& candidates);

// The seed a request gets: --seed, or a random one for -1.
uint64_t resolve_seed(int64_t seed);

// Print "llmq <cmd>: <message>" to stderr and return kExitRuntimeError.
int fail(const std::string& command, const std::string& message);
// Print "llmq <cmd>: <message>" and a pointer to --help; return kExitUsage.
int usage_error(const std::string& command, const std::string& message);

}  // namespace llmq::cli

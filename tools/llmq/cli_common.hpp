// Pieces shared by the llmq subcommands: sampling flags, config loading, JSON Lines output.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmq::cli {

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
    std::optional<uint64_t> seed;
    std::vector<std::string> stop;
    bool ignore_eos = false;
};
void add_sampling_flags(CLI::App& app, SamplingFlags& flags);

// One generated piece as a JSON Lines object: {"token": id, "text": piece[, "logprob": x]}.
nlohmann::json token_json(int32_t token, const std::string& text, std::optional<float> logprob);

// Write one line to stdout and flush (streaming).
void print_line(const std::string& line);
void print_text(const std::string& text);

// Print "llmq <cmd>: <message>" to stderr and return exit code 1.
int fail(const std::string& command, const std::string& message);

}  // namespace llmq::cli

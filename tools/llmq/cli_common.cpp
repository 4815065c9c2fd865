#include "cli_common.hpp"

#include <cstdio>
#include <iostream>

namespace llmq::cli {

void add_sampling_flags(CLI::App& app, SamplingFlags& f) {
    app.add_option("--max-tokens,-n", f.max_tokens, "Most tokens to generate")
        ->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--temperature,-t", f.temperature, "Sampling temperature; 0 = greedy")
        ->check(CLI::Range(0.0, 100.0))->capture_default_str();
    app.add_option("--top-k", f.top_k, "Keep the K most likely tokens; 0 = off")
        ->check(CLI::Range(0, 1 << 24))->capture_default_str();
    app.add_option("--top-p", f.top_p, "Nucleus sampling mass; 1 = off")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--min-p", f.min_p, "Drop tokens below min-p x the top probability; 0 = off")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--repeat-penalty", f.repeat_penalty, "Repetition penalty; 1 = off")
        ->check(CLI::Range(0.0, 10.0))->capture_default_str();
    app.add_option("--presence-penalty", f.presence_penalty, "Presence penalty")
        ->check(CLI::Range(-2.0, 2.0))->capture_default_str();
    app.add_option("--frequency-penalty", f.frequency_penalty, "Frequency penalty")
        ->check(CLI::Range(-2.0, 2.0))->capture_default_str();
    app.add_option("--seed,-s", f.seed, "Random seed (same seed, same output); default: random");
    app.add_option("--stop", f.stop, "Stop when this text is generated (repeatable)");
    app.add_flag("--ignore-eos", f.ignore_eos, "Keep generating past end-of-generation tokens");
}

nlohmann::json token_json(int32_t token, const std::string& text, std::optional<float> logprob) {
    nlohmann::json j;
    j["token"] = token;
    j["text"] = text;
    if (logprob) j["logprob"] = *logprob;
    return j;
}

void print_line(const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

void print_text(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

int fail(const std::string& command, const std::string& message) {
    std::cerr << "llmq " << command << ": " << message << "\n";
    return 1;
}

}  // namespace llmq::cli

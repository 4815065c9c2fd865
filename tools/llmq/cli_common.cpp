#include "cli_common.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <limits>
#include <random>

#include "llmq/runtime/edit_distance.hpp"

namespace llmq::cli {

void add_sampling_flags(CLI::App& app, SamplingFlags& f) {
    app.add_option("--max-tokens,-n", f.max_tokens, "Most tokens to generate")
        ->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--temp,--temperature", f.temperature, "Sampling temperature; 0 = greedy")
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
    app.add_option("--seed,-s", f.seed, "Random seed (same seed, same output); -1 = random")
        ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()))->capture_default_str();
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
    return kExitRuntimeError;
}

int usage_error(const std::string& command, const std::string& message) {
    std::cerr << "llmq " << command << ": " << message << " (see llmq " << command << " --help)\n";
    return kExitUsage;
}

std::string exit_code_policy() {
    return "Exit codes: 0 success; 1 the command failed (the message says why; `llmq plan`: the "
           "model does not fit); 2 usage error (unknown command or flag, bad value), nothing was "
           "done; 130 a generation was cancelled with Ctrl-C.";
}

void set_example(CLI::App& app, const std::string& example) { app.footer("\nExample:\n" + example); }

void add_model_flags(CLI::App& app, ModelFlags& f, const std::string& model_help, bool runs_model) {
    app.add_option("--model,-m", f.model, model_help);
    app.add_option("--config", f.config, "llmq TOML config file (the flags here override it)");
    app.add_option("--ctx-size,-c", f.ctx_size, "Context length in tokens (overrides [model] context_length)")
        ->check(CLI::Range(1u, 1u << 24));
    if (runs_model)
        app.add_option("--threads,-t", f.threads, "CPU threads per device (overrides [devices] cpu_threads_per_device)")
            ->check(CLI::Range(1, 4096));
}

Expected<Config> model_config(const ModelFlags& f) {
    Config config;
    if (!f.config.empty()) {
        auto c = load_config_file(f.config);
        if (!c) return c.status();
        config = *c;
    }
    if (!f.model.empty()) config.model.path = f.model;
    if (f.ctx_size) config.model.context_length = *f.ctx_size;
    if (f.threads) config.devices.cpu_threads_per_device = *f.threads;
    if (Status s = validate_config(config); !s.ok()) return s;
    return config;
}

std::string stats_line(size_t prompt_tokens, double prefill_tokens_per_s, size_t generated,
                       double decode_tokens_per_s, const std::string& finish_reason) {
    char line[200];
    std::snprintf(line, sizeof line, "[%zu prompt tokens, %.1f tok/s prefill; %zu generated, %.1f tok/s decode; %s]",
                  prompt_tokens, prefill_tokens_per_s, generated, decode_tokens_per_s, finish_reason.c_str());
    return line;
}

std::string duration_text(double seconds) {
    const unsigned long long s = seconds < 0 ? 0 : static_cast<unsigned long long>(seconds);
    // The two largest units: "12 min 3 s", "3 h 12 min", "2 d 5 h".
    struct Unit {
        unsigned long long seconds;
        const char* name;
    };
    constexpr Unit units[] = {{86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}};
    char text[48];
    for (size_t i = 0; i + 1 < std::size(units); ++i) {
        if (s < units[i].seconds) continue;
        std::snprintf(text, sizeof text, "%llu %s %llu %s", s / units[i].seconds, units[i].name,
                      s % units[i].seconds / units[i + 1].seconds, units[i + 1].name);
        return text;
    }
    std::snprintf(text, sizeof text, "%llu s", s);
    return text;
}

std::string closest_name(const std::string& word, const std::vector<std::string>& candidates) {
    // A name within a third of its length (at least 2 edits) is a likely typo.
    std::string best;
    size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        if (const size_t d = edit_distance(word, c); d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    if (!best.empty() || word.size() < 3) return best;
    for (const auto& c : candidates)  // a start of a longer name: "gen" → "generate"
        if (c.rfind(word, 0) == 0) return c;
    return "";
}

uint64_t resolve_seed(int64_t seed) {
    if (seed >= 0) return static_cast<uint64_t>(seed);
    std::random_device device;
    return static_cast<uint64_t>(device()) << 32 | device();
}

}  // namespace llmq::cli

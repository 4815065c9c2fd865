// llmq perplexity: how well a model predicts a text. The text is tokenized as a prompt
// would be (BOS when the vocabulary asks for it) and cut into consecutive windows of --ctx-size
// tokens; in each window every token but the first is predicted from the tokens before it
// in its window (the window is --ctx-size, as llama.cpp's perplexity takes it). Perplexity =
// exp(mean negative log-likelihood), the log-softmax in double.
// Windows run through the executor in chunks of at most one step's logit rows, the KV cache
// carrying each window's earlier chunks, so any context that fits the cache can be scored.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"

namespace llmq::cli {

namespace {

constexpr uint32_t kDefaultWindow = 512;

struct Flags {
    ModelFlags model;
    std::string file;
    int32_t max_windows = 0;
    bool json = false;
    bool no_bos = false;
};

// -log p(target) from one row of logits, in double.
double neg_log_prob(const float* logits, int64_t n, int32_t target) {
    double top = -INFINITY;
    for (int64_t i = 0; i < n; ++i) top = std::max(top, static_cast<double>(logits[i]));
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - top);
    return top + std::log(sum) - static_cast<double>(logits[target]);
}

}  // namespace

Command add_perplexity(CLI::App& root) {
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand(
        "perplexity", "Score a text file: the model's perplexity over consecutive windows");
    set_example(*app, "  llmq perplexity -m models/kjv-demo.gguf -f models/kjv-demo-heldout.txt -c 128\n"
                      "  (-c/--ctx-size is the window: tokens per window, default 512)");
    add_model_flags(*app, f->model, "GGUF model file (overrides [model] path)", true);
    app->add_option("--file,-f", f->file, "UTF-8 text to score")->required();
    app->add_option("--max-windows", f->max_windows, "Score only the first N windows (0: all)");
    app->add_flag("--no-bos", f->no_bos, "Do not prepend the BOS token to the text");
    app->add_flag("--json", f->json, "Print one JSON object");
    return [f]() -> int {
        log::set_level(log::level::warn);
        // The window is --ctx-size (default 512); one window must fit one sequence's KV.
        const uint32_t window = f->model.ctx_size.value_or(kDefaultWindow);
        ModelFlags mf = f->model;
        mf.ctx_size = window;
        auto config = model_config(mf);
        if (!config) return fail("perplexity", config.status().message());
        if (config->model.path.empty()) return fail("perplexity", "no model: give --model PATH or [model] path");
        std::ifstream in(f->file, std::ios::binary);
        if (!in) return fail("perplexity", f->file + ": cannot be read");
        std::ostringstream text;
        text << in.rdbuf();
        auto rt = ModelRuntime::load(*config);
        if (!rt) return fail("perplexity", rt.status().message());
        Executor& ex = (*rt)->executor();
        const int64_t V = (*rt)->hparams().n_vocab;
        std::vector<int32_t> ids = (*rt)->tokenizer().encode(text.str(), !f->no_bos, false);
        if (ids.size() < 2) return fail("perplexity", f->file + ": fewer than 2 tokens to score");
        const int32_t chunk = std::max(1, std::min(ex.options().max_seqs_per_step, ex.options().max_tokens_per_step));
        const int32_t block = ex.options().block_size;
        const auto started = std::chrono::steady_clock::now();
        double nll = 0;
        int64_t predicted = 0, windows = 0;
        std::vector<float> logits;
        for (size_t w0 = 0; w0 + 1 < ids.size(); w0 += static_cast<size_t>(window)) {
            if (f->max_windows > 0 && windows == f->max_windows) break;
            const int32_t len = static_cast<int32_t>(std::min<size_t>(static_cast<size_t>(window), ids.size() - w0));
            if (len < 2) break;
            std::vector<int32_t> table;
            if (!ex.blocks().allocate((len + block - 1) / block, table))
                return fail("perplexity", "the KV cache cannot hold a window of " + std::to_string(len) +
                                              " tokens; lower --ctx-size or raise [kv_cache] memory");
            Status st;
            for (int32_t off = 0; off < len && st.ok(); off += chunk) {
                StepSequence s;
                s.tokens = ids.data() + w0 + off;
                s.count = std::min(chunk, len - off);
                s.position = off;
                s.block_table = &table;
                s.want_logits = true;
                s.logit_tokens = s.count;
                st = ex.forward({&s, 1}, logits);
                for (int32_t j = 0; st.ok() && j < s.count; ++j) {
                    const int32_t next = off + j + 1;  // the token row j predicts
                    if (next >= len) break;
                    nll += neg_log_prob(logits.data() + j * V, V, ids[w0 + next]);
                    ++predicted;
                }
            }
            ex.blocks().release(table);
            if (!st.ok()) return fail("perplexity", st.message());
            ++windows;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const double ppl = std::exp(nll / static_cast<double>(predicted));
        if (f->json) {
            nlohmann::json j;
            j["model"] = (*rt)->model_path();
            j["file"] = f->file;
            j["perplexity"] = ppl;
            j["mean_nll"] = nll / static_cast<double>(predicted);
            j["predicted_tokens"] = predicted;
            j["tokens"] = ids.size();
            j["windows"] = windows;
            j["ctx"] = window;
            j["seconds"] = seconds;
            print_line(j.dump());
        } else {
            char line[256];
            std::snprintf(line, sizeof line,
                          "perplexity %.4f over %lld predicted tokens (%lld windows of %u; %.1f s, %.0f tokens/s)",
                          ppl, static_cast<long long>(predicted), static_cast<long long>(windows), window,
                          seconds, seconds > 0 ? static_cast<double>(predicted) / seconds : 0.0);
            print_line(line);
        }
        return 0;
    };
}

}  // namespace llmq::cli

// The model a benchmark runs: a GGUF file given on the command line, or a random model of a
// shape given on the command line, written to a temporary file that is removed at exit.
// Also what one token costs on that model (bytes of weights read, multiply-adds), which the
// benchmarks divide the machine's limits by.
//
// Threads: one thread (the benchmark's main).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "llmq/runtime/status.hpp"
#include "random_llama.hpp"

namespace llmq::bench {

struct ModelChoice {
    std::string path;        // --model; empty: make one from `shape`
    RandomLlamaSpec shape;   // --dim --layers --heads --kv-heads --ffn --vocab
    std::string dtype = "f16";
};

// Adds --model, --dim, --layers, --heads, --kv-heads, --ffn, --vocab, --dtype to `app`, with
// the TinyLlama-1.1B shape as the default (dim 2048, 22 layers, 32 heads, 4 KV heads, ffn
// 5632, vocab 32000, f16).
void add_model_options(CLI::App& app, ModelChoice& choice);

// A model file that exists for the lifetime of this object: the user's file, or a random model
// written under the temporary directory and removed by the destructor.
class BenchModel {
public:
    // Errors: invalid_argument for a bad shape, io_error when the file cannot be written.
    [[nodiscard]] static Expected<BenchModel> prepare(const ModelChoice& choice);
    BenchModel(BenchModel&& other) noexcept;
    BenchModel& operator=(BenchModel&&) = delete;
    ~BenchModel();

    const std::string& path() const { return path_; }
    bool temporary() const { return temporary_; }
    double make_seconds() const { return make_seconds_; }

private:
    BenchModel() = default;
    std::string path_;
    bool temporary_ = false;
    double make_seconds_ = 0;
};

// What one token costs, from the file's tensor table.
struct TokenCost {
    std::string weight_dtype;          // of the first layer's attn_q
    uint64_t file_weight_bytes = 0;    // every tensor the model uses
    // Weight bytes a decode step of one token reads: every layer tensor, the output norm, the
    // whole LM head, and one row of the embedding table (the whole table when it is the LM head).
    uint64_t decode_weight_bytes = 0;
    uint64_t layer_matmul_params = 0;  // q, k, v, o, gate, up, down over all layers
    uint64_t lm_head_params = 0;       // n_vocab x n_embd
    uint64_t kv_bytes_per_position = 0;  // f16 K and V of one position over all layers
    uint32_t n_layer = 0, n_embd = 0, n_head = 0, head_dim = 0, n_vocab = 0;

    // FLOPs of a prefill of `prompt` tokens that computes logits for the last one:
    // 2 x layer matmul params per token, the LM head once, and causal attention
    // (QK^T and PV: 2 x 2 x n_head x head_dim x (1 + 2 + ... + prompt) per layer).
    double prefill_flops(int64_t prompt) const;
};

[[nodiscard]] Expected<TokenCost> token_cost(const std::string& gguf_path);

}  // namespace llmq::bench

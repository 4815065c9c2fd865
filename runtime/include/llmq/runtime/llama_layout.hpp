// The Llama architecture as GGUF names it: hyperparameters from `<arch>.*` metadata and the
// tensors of every layer, each checked for presence, shape and type.
//
// Works on header-only files (tensor data pointers are then nullptr), so the memory planner
// can use it before anything is loaded.
//
// Ownership: a LlamaLayout points into the GgufFile it was built from; the file must outlive
// it. Plain data, safe to read from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct LlamaHParams {
    std::string arch;          // general.architecture: "llama", "mistral", "qwen2", "mllama"
    uint32_t n_vocab = 0;      // rows of the LM head (logits per position)
    // Rows of token_embd: n_vocab, except mllama's table, which has 8 more rows past the LM
    // head's vocabulary (Hugging Face MllamaTextModel: vocab_size + 8); the first of them is
    // the <|image|> token.
    uint32_t n_embd_rows = 0;
    uint32_t n_embd = 0;       // hidden size
    uint32_t n_layer = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;    // = n_head without grouped-query attention
    uint32_t n_ff = 0;         // feed-forward hidden size
    uint32_t n_ctx_train = 0;  // <arch>.context_length
    uint32_t head_dim = 0;     // <arch>.attention.key_length, else n_embd / n_head
    uint32_t n_rot = 0;        // <arch>.rope.dimension_count, else head_dim (must equal head_dim)
    float rms_eps = 1e-5f;
    float rope_theta = 10000.0f;
    float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
    // Rotate (i, i + d/2) pairs instead of (2i, 2i+1): qwen2, and any file whose metadata sets
    // llmq.rope.neox = true (a Hugging Face Llama directory, whose q/k rows are in that order).
    bool rope_neox = false;
    bool tied_output = false;      // no output.weight: the LM head is token_embd
    bool qkv_bias = false;         // attn_q/k/v.bias present (qwen2)
    // <arch>.attention.sliding_window (Mistral): a query at position p attends to keys at
    // positions p - sliding_window + 1 .. p only; 0 = no window (full causal attention).
    uint32_t sliding_window = 0;
    // mllama (Llama 3.2 Vision): the indices of the cross-attention layers, ascending
    // (<arch>.attention.cross_attention_layers), and the <|image|> token's id (the tokenizer's
    // "<|image|>", else n_vocab as Hugging Face's image_token_index = vocab_size); -1 without.
    std::vector<uint32_t> cross_layers;
    int32_t image_token = -1;
    bool is_cross_layer(uint32_t layer) const;
};

struct LlamaLayerTensors {
    const GgufTensor* attn_norm = nullptr;  // [n_embd] F32
    const GgufTensor* wq = nullptr;         // [n_embd, n_head * head_dim]
    const GgufTensor* wk = nullptr;         // [n_embd, n_head_kv * head_dim]
    const GgufTensor* wv = nullptr;         // [n_embd, n_head_kv * head_dim]
    const GgufTensor* wo = nullptr;         // [n_head * head_dim, n_embd]
    const GgufTensor* ffn_norm = nullptr;   // [n_embd] F32
    const GgufTensor* ffn_gate = nullptr;   // [n_embd, n_ff]
    const GgufTensor* ffn_up = nullptr;     // [n_embd, n_ff]
    const GgufTensor* ffn_down = nullptr;   // [n_ff, n_embd]
    const GgufTensor* bq = nullptr;         // [n_head * head_dim] F32, optional
    const GgufTensor* bk = nullptr;         // [n_head_kv * head_dim] F32, optional
    const GgufTensor* bv = nullptr;         // [n_head_kv * head_dim] F32, optional
    // A cross-attention layer (mllama) has no self-attention: wq/wk/wv/wo are then its
    // cross_attn_{q,k,v,o}_proj (K and V project the image rows, which have n_embd values),
    // attn_norm its input norm, ffn_* its gated MLP, and these are set:
    bool cross = false;
    const GgufTensor* q_norm = nullptr;     // cross_attn_q_norm [head_dim] F32 (per head RMSNorm)
    const GgufTensor* k_norm = nullptr;     // cross_attn_k_norm [head_dim] F32
    const GgufTensor* attn_gate = nullptr;  // cross_attn_attn_gate [1] F32, tanh'd when applied
    const GgufTensor* mlp_gate = nullptr;   // cross_attn_mlp_gate [1] F32, tanh'd when applied
};

// The vision part of a single-file mllama GGUF as the text side's planner sees it (the
// encoder itself is MllamaVisionModel's). Zero without one.
struct MllamaVisionSummary {
    int64_t rows_per_image = 0;   // cross-attention rows of one image: max_num_tiles x (patches + 1)
};

// Shapes are in GGUF order (shape[0] innermost): a matmul weight [in, out] is `out` rows of
// `in` values, which is the row layout kernels::gemm takes.
struct LlamaLayout {
    LlamaHParams hp;
    const GgufTensor* token_embd = nullptr;   // [n_embd, n_embd_rows]
    const GgufTensor* output_norm = nullptr;  // [n_embd] F32
    const GgufTensor* output = nullptr;       // [n_embd, n_vocab]; == token_embd when tied
    // [head_dim / 2] F32, optional (Llama 3.1 style long-context RoPE): each rotation
    // frequency is divided by its factor. An engine that does not apply it must refuse it.
    const GgufTensor* rope_freqs = nullptr;
    std::vector<LlamaLayerTensors> layers;    // n_layer entries
    MllamaVisionSummary vision;               // mllama with mllama.vision.* keys

    // Bytes of all tensors the layout uses (token_embd counted once when tied).
    uint64_t weight_bytes() const;
    // Parameters of those tensors.
    uint64_t parameter_count() const;
};

// Llama 3.1's long-context RoPE (Hugging Face rope_scaling with rope_type "llama3").
struct Llama3RopeScaling {
    double factor = 8.0;
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    double original_context = 8192.0;  // original_max_position_embeddings
};

// The per-pair divisors of the RoPE frequencies theta^(-2i/head_dim), i < head_dim/2, that
// `s` describes: 1 for wavelengths below original_context / high_freq_factor, `factor` above
// original_context / low_freq_factor, interpolated between. This is what a rope_freqs.weight
// tensor holds.
std::vector<float> llama3_rope_factors(uint32_t head_dim, double theta, const Llama3RopeScaling& s);

// Reads and checks the hyperparameters alone (no tensors): missing/ill-typed keys, zero
// sizes, n_embd % n_head, n_head % n_head_kv, unsupported rope scaling.
[[nodiscard]] Expected<LlamaHParams> read_llama_hparams(const GgufFile& file);

// Hyperparameters plus every tensor, each checked for presence, shape and type: norms and
// biases F32; matmul weights and token_embd F32/F16/BF16/Q8_0. Errors name the file, the
// tensor, the expected and the actual shape or type. The file must outlive the layout.
[[nodiscard]] Expected<LlamaLayout> load_llama_layout(const GgufFile& file);

}  // namespace llmq

// Random-weight GGUF Llama models of any shape and dtype, for tests, benchmarks and as the
// default model of the README's main job.
//
// Weights are deterministic functions of (seed, tensor name, row): the same spec always
// gives the same bytes. Matmul weights have mean 0 and standard deviation 1/sqrt(inputs)
// (≈0.02 at Llama sizes) so activations stay near unit scale; norm weights are 1 ± 0.1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/status.hpp"
#include "random_mllama_vision.hpp"

namespace llmq {

struct RandomLlamaSpec {
    std::string arch = "llama";  // llama | mistral | qwen2 | mllama (metadata prefix)
    std::string name = "llmq-random-llama";
    uint32_t dim = 64;
    uint32_t layers = 2;
    uint32_t heads = 4;
    uint32_t kv_heads = 2;
    uint32_t ffn = 128;
    uint32_t vocab = 0;        // synthetic vocabulary size; 0: 512, or vocab_from's size
    std::string vocab_from;    // GGUF whose tokenizer.* keys are copied ("" = synthesize)
    uint32_t context = 2048;
    kernels::dtype dtype = kernels::dtype::f32;  // matmul weights and embeddings; norms F32
    std::string mix;           // a weight mix of weight_mix.hpp ("q4_k_m"); overrides dtype
    bool tied = false;         // no output.weight: the LM head is token_embd
    bool qkv_bias = false;     // attn_q/k/v.bias in every layer
    bool header_only = false;  // metadata and tensor table only (for planning)
    uint64_t seed = 1;
    float rope_theta = 10000.0f;
    float rms_eps = 1e-5f;
    // rope_freqs.weight with Llama 3.1's long-context factors (scale 8, low/high frequency
    // factors 1 and 4, original context 8192), as converters write them for Llama 3.1/3.2.
    bool rope_freqs = false;
    uint32_t sliding_window = 0;  // <arch>.attention.sliding_window; 0 = key not written
    // mllama (Llama 3.2 Vision's text model, as Ollama's converter writes it): these layers are
    // cross-attention layers (cross_attn_* tensors, mllama.attention.cross_attention_layers);
    // the vocabulary gets "<|image|>" at id `vocab`, token_embd 8 rows past the LM head's.
    std::vector<uint32_t> cross_layers;
    // mllama: the vision part in the same file (random_mllama_vision.hpp), when set.
    std::optional<RandomMllamaVisionSpec> vision;
};

// Llama-3.2-11B-Vision's and -90B-Vision's text model shapes (Hugging Face configs:
// text_config of meta-llama/Llama-3.2-{11B,90B}-Vision-Instruct), header-only, for planning.
// `which` is "11b" or "90b"; false for another name.
bool mllama_text_preset(const std::string& which, RandomLlamaSpec* spec);
// Their vision part (the same in both: vision_config of either): 560-px tiles of 14-px
// patches, width 1280, 32 local and 8 global layers, 16 heads, MLP 5120, 4 tiles, the
// intermediate layers 3, 7, 15, 23, 30. projection_dim is the text model's --dim.
RandomMllamaVisionSpec mllama_vision_preset();

// Llama 3.1's per-pair RoPE divisors for head size `head_dim` and base `theta`.
std::vector<float> llama31_rope_factors(uint32_t head_dim, float theta);

// Checks the spec (positive sizes, dim % heads, heads % kv_heads, even head size, rows of
// quantized weights a multiple of their block, a known dtype or mix), builds the metadata and writes the file at `path`
// (streamed; memory stays small whatever the model size). Errors: invalid_argument for a bad
// spec, errors of GgufFile::open for vocab_from, io_error for the output.
[[nodiscard]] Status write_random_llama(const RandomLlamaSpec& spec, const std::string& path);

}  // namespace llmq

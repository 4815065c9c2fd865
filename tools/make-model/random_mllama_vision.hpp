// Random-weight vision parts of Llama 3.2 Vision (GGUF architecture "mllama"): the
// mllama.vision.* keys and the v.* / mm.0 tensors as Ollama's convert_mllama.go writes them
// (llmq/runtime/mllama_vision.hpp lists them), of any shape, for tests, benchmarks and planning.
// Weights are deterministic functions of (seed, name, row) with the scales of random_llama.hpp
// (matmul weights 1/sqrt(inputs), norms 1 ± 0.1, biases ± 0.02); the embeddings and the
// per-aspect-ratio tables are near unit scale over sqrt(dim), so every term of the embedding
// matters. Gates are drawn as HF's parameters g (about ±1) and stored as the converter stores
// them: tanh(g), and 1 - tanh(g) for v.position_embd.gate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct RandomMllamaVisionSpec {
    uint32_t image_size = 28;      // mllama.vision.image_size (the tile side)
    uint32_t patch_size = 7;
    uint32_t dim = 32;             // mllama.vision.embedding_length
    uint32_t ffn = 64;
    uint32_t heads = 2;
    uint32_t layers = 4;           // mllama.vision.block_count (the local encoder)
    uint32_t global_layers = 2;    // mllama.vision.global.block_count
    uint32_t max_tiles = 4;        // mllama.vision.max_num_tiles
    std::vector<int32_t> intermediate_layers = {1, 3};  // indices into the local hidden states
    uint32_t projection_dim = 64;  // mm.0's output: the text model's embedding length
    // Linear weights, the patch embedding and the 2-D embedding tables; norms, biases, gates
    // and the class embedding are F32 (as the converter writes 1-D tensors).
    kernels::dtype dtype = kernels::dtype::f32;
    bool header_only = false;      // GgufWriter's option; only read by write_random_mllama_vision
    uint64_t seed = 7;
};

// invalid_argument naming what is wrong: sizes out of 1..2^20, image_size % patch_size,
// dim % heads, max_tiles in 1..16, intermediate layers empty or outside 0..layers, a dtype
// other than f32, f16 or bf16.
[[nodiscard]] Status check_random_mllama_vision(const RandomMllamaVisionSpec& spec);

// Adds the mllama.vision.* keys and the v.* / mm.0 tensors to w (general.architecture and the
// text part are the caller's). The spec is checked first.
[[nodiscard]] Status add_random_mllama_vision(const RandomMllamaVisionSpec& spec, GgufWriter& w);

// A file of general.architecture "mllama" holding only the vision part (what
// MllamaVisionModel::open reads; the text side needs the rest). Errors: those above, io_error.
[[nodiscard]] Status write_random_mllama_vision(const RandomMllamaVisionSpec& spec, const std::string& path);

}  // namespace llmq

// Random-weight LLaVA-1.5-style projector files (GGUF architecture "clip", the "mmproj" file
// llama.cpp's converter writes): a CLIP vision tower and the MLP projector, of any shape, for
// tests, benchmarks and planning. Weights are deterministic functions of (seed, name, row),
// with the same scales as random_llama.hpp (matmul weights 1/sqrt(inputs), norms 1 ± 0.1,
// biases and embeddings ± 0.02-ish), so activations stay near unit scale.
#pragma once

#include <cstdint>
#include <string>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct RandomClipSpec {
    std::string name = "llmq-random-clip";
    uint32_t image_size = 28;
    uint32_t patch_size = 14;
    uint32_t dim = 32;            // clip.vision.embedding_length
    uint32_t ffn = 64;
    uint32_t heads = 2;
    uint32_t layers = 3;          // clip.vision.block_count
    uint32_t projection_dim = 64; // the text model's embedding length
    bool gelu = false;            // clip.use_gelu (false: quick-GELU, OpenAI CLIP's)
    int32_t feature_layer = -1;   // clip.vision.feature_layer; -1 = key not written
    // Linear and 2-D weights; the patch embedding too unless patch_f16 (real files keep it
    // F16 always). Norms, biases and the class embedding are F32.
    kernels::dtype dtype = kernels::dtype::f32;
    bool patch_f16 = false;
    bool header_only = false;
    uint64_t seed = 7;
};

// Checks the spec (positive sizes, image_size % patch_size, dim % heads, feature_layer in
// 1..layers) and writes the file. Errors: invalid_argument for a bad spec, io_error.
[[nodiscard]] Status write_random_clip(const RandomClipSpec& spec, const std::string& path);

}  // namespace llmq

// The tiled vision encoder of Llama 3.2 Vision ("mllama") and its mm.0 projector, in the
// vision-cpu plugin, on the kernels of kernels/ (gemm, the vision kernels). Private to the
// plugin.
//
// The forward pass of Hugging Face's MllamaVisionModel and multi_modal_projector, for one image
// of T = max_num_tiles tiles, the first `used` real (T_used = high * wide of the aspect-ratio
// id's grid), with Pp = patches + 1 rows per tile, padded to Tp (a multiple of 8):
//   x[t] = patch_embd(pixels[t])                                         [T][P][D]
//   x[t] += tanh(g_pre) * pre_tile[id][t]                  (the patches only)
//   x[t] = [class_embd; x[t]]                                            [T][Pp][D]
//   x[t] += (1 - tanh(g_pos)) * position + tanh(g_pos) * tile_position[id][t]
//   x = pre_ln(x); pad each tile with zero rows to Tp                    [T·Tp][D]
//   local layers l < L: keep the input of layer i for each intermediate index i (i = L: the
//     output); x += attn(ln1 x); x += fc2(gelu(fc1(ln2 x)))
//   x = post_ln(x); x[t] += tanh(g_post) * post_tile[id][t]   (every row of the tile)
//   global layers: x += tanh(g_attn) attn(ln1 x); x += tanh(g_ffn) mlp(ln2 x)
//   drop the padding rows; feature = [x (D) ; kept states interleaved, value d of state k at
//     D + d·K + k (HF's stack(dim=-1))]; out = mm.0(feature)             [T·Pp][N]
// Attention in both encoders is over all T·Tp rows with HF's mask: a query row that is
// padding (a tile past `used`, or a row past Pp) sees only the real rows; a real row sees
// every row, padding included. The GGUF holds the gates already through tanh (and 1 - tanh
// for the position gate), as the converter writes them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq_plugin.h"
#include "vision_weights.hpp"

namespace llmq::vision_cpu {

struct mllama_hparams : vit_sizes {
    int32_t global_layers = 0, max_tiles = 0, aspect_ratio_rows = 0;
    std::vector<int32_t> intermediate;
    std::vector<int32_t> grid_tiles;  // tiles of the grid of aspect-ratio id i + 1
    int32_t rows_per_tile() const { return patches() + 1; }
    int32_t padded_rows_per_tile() const { return (rows_per_tile() + 7) / 8 * 8; }
    int32_t feature_dim() const { return dim * (1 + int32_t(intermediate.size())); }
};

struct mllama_layer {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
    linear q, k, v, o, fc1, fc2;
    float attn_gate = 1.0f, ffn_gate = 1.0f;  // as stored (tanh applied); 1 in the local layers
};

struct mllama_model {
    mllama_hparams hp;
    linear patch;                        // [D][3 p p], no bias
    std::vector<float> class_embd;       // [D]
    std::vector<float> position_embd;    // [Pp][D]
    float position_gate = 0, tile_position_gate = 0, pre_tile_gate = 0, post_tile_gate = 0;
    row_table tile_position_embd;        // [R][T Pp D]
    row_table pre_tile_embd, post_tile_embd;  // [R][T D]
    std::vector<float> pre_ln_w, pre_ln_b, post_ln_w, post_ln_b;
    std::vector<mllama_layer> layers, global_layers;
    linear mm0;                          // [N][D (1 + intermediate)]
};

// Build the model from the host's named tensors and its metadata (architecture "mllama");
// false with `error` written (LLMQ_STATUS_* in *status) when a size is missing, a tensor is
// missing or has the wrong shape or type.
bool load_mllama(const llmq_named_tensor* tensors, size_t count, const char* metadata_json, mllama_model& model,
                 llmq_status* status, llmq_error* error);

// Encode pixels [T][3][I][I] of aspect-ratio id `id` (1 .. grid_tiles.size()) into out
// [T Pp][projection_dim]. scratch is grown as needed and kept between calls.
void encode_mllama(const mllama_model& model, const llmq_host& host, kernels::isa isa, const float* pixels,
                   int32_t id, float* out, std::vector<float>& scratch);

// Floats of scratch encode_mllama uses (the planner counts the same, mllama_vision.cpp).
int64_t mllama_scratch_floats(const mllama_hparams& hp);

}  // namespace llmq::vision_cpu

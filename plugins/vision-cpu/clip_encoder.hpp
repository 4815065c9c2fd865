// The CLIP vision tower and LLaVA's MLP projector of the vision-cpu plugin, on the kernels of
// kernels/ (gemm, the vision kernels) with the work of each op spread over the device's cores
// through the host's parallel_for. Private to the plugin.
//
// The forward pass, as Hugging Face's CLIPVisionTransformer and LlavaMultiModalProjector
// define it (docs/vision.md says where each rule comes from):
//   x = [class_embd; patch_embd(pixels)] + position_embd            [1 + P][D]
//   x = pre_ln(x)
//   for the first `layers` encoder layers:
//     x = x + out(attn(ln1(x)))          bidirectional, H heads, scale head_dim^-1/2
//     x = x + fc2(act(fc1(ln2(x))))      fc1 = GGUF's ffn_down, fc2 = ffn_up (the converter's names)
//   drop the class row; y = mm.2(gelu_erf(mm.0(x)))                [P][projection_dim]
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq_plugin.h"
#include "vision_weights.hpp"

namespace llmq::vision_cpu {

struct clip_hparams : vit_sizes {
    bool quick_gelu = true;
};

struct clip_layer {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
    linear q, k, v, o, fc1, fc2;
};

struct clip_model {
    clip_hparams hp;
    linear patch;                            // [D][3 * p * p], no bias
    std::vector<float> class_embd;           // [D]
    std::vector<float> position_embd;        // [1 + P][D]
    std::vector<float> pre_ln_w, pre_ln_b;
    std::vector<clip_layer> layers;          // the `layers` that run
    linear mm0, mm2;
};

// Build the model from the host's named tensors and metadata; false with `error` written
// (LLMQ_STATUS_* in *status) when a tensor is missing or has the wrong shape or type, or the
// metadata names an architecture, activation or projector this plugin does not implement.
bool load_clip(const llmq_named_tensor* tensors, size_t count, const char* metadata_json, clip_model& model,
               llmq_status* status, llmq_error* error);

// Run the encoder and projector on pixels [3][I][I]; out: [P][projection_dim].
// scratch is grown as needed and kept between calls.
void encode_clip(const clip_model& model, const llmq_host& host, kernels::isa isa, const float* pixels, float* out,
                 std::vector<float>& scratch);

}  // namespace llmq::vision_cpu

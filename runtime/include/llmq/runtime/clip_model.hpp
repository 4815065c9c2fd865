// A LLaVA-1.5-style vision projector file: a GGUF of architecture "clip" (as llama.cpp's
// convert_image_encoder_to_gguf.py writes it, the "mmproj" file) holding a CLIP vision tower
// and an MLP projector, paired with a Llama GGUF for the text. docs/vision.md says which rule
// comes from where.
//
// What is read and checked at open (a refusal names the file and the key or tensor):
//   clip.has_vision_encoder = true, clip.has_llava_projector = true,
//   clip.projector_type = "mlp" (absent: "mlp");
//   clip.vision.{image_size, patch_size, embedding_length, feed_forward_length,
//   attention.head_count, attention.layer_norm_epsilon, block_count, image_mean[3],
//   image_std[3]}, clip.use_gelu (false: quick-GELU), clip.vision.feature_layer (optional:
//   one index into the hidden states, 0 = the embeddings; absent: block_count - 1, LLaVA's
//   "second to last layer");
//   tensors v.patch_embd.weight [D][3][p][p], v.class_embd [D], v.position_embd.weight
//   [1 + P][D], v.pre_ln.*, v.blk.N.* for N < feature layer, mm.0.* [N][D], mm.2.* [N][N].
// The encoder runs the first `feature_layer` layers, drops the class token and projects the
// P patch rows to projection_dim (which must equal the text model's embedding length).
//
// Threads: immutable after open; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"
#include "llmq_plugin.h"

namespace llmq {

struct ClipHParams {
    int32_t image_size = 0;
    int32_t patch_size = 0;
    int32_t dim = 0;         // embedding_length
    int32_t ff = 0;          // feed_forward_length
    int32_t heads = 0;
    int32_t block_count = 0; // layers in the file
    int32_t layers = 0;      // layers that run (the feature layer)
    int32_t projection_dim = 0;
    float eps = 1e-5f;
    bool quick_gelu = true;
    std::array<float, 3> mean{};
    std::array<float, 3> std{};
    int32_t grid() const { return image_size / patch_size; }
    int32_t patches() const { return grid() * grid(); }  // embedding rows per image
};

class ClipModel {
public:
    // Open and check a projector file. Errors: those of GgufFile::open; invalid_argument
    // naming the file and the key or tensor that is missing or wrong; unsupported for a
    // projector type or feature-layer list llmq does not run.
    [[nodiscard]] static Expected<std::shared_ptr<const ClipModel>> open(const std::string& path);
    // The same on a file already open (the planner reads header-only files this way).
    [[nodiscard]] static Expected<std::shared_ptr<const ClipModel>> from_file(std::shared_ptr<const GgufFile> file);

    const ClipHParams& hparams() const { return hp_; }
    const GgufFile& file() const { return *file_; }
    // The tensors the vision plugin gets (llmq_vision_ops.load_weights), in host memory (views
    // of the file mapping), with their GGUF names; valid while this object lives.
    const std::vector<llmq_named_tensor>& plugin_tensors() const { return named_; }
    // The metadata object of the ABI's vision contract (llmq_plugin.h), as JSON text.
    const std::string& plugin_metadata() const { return metadata_; }
    // Bytes of the tensors the encoder reads (the layers past the feature layer are not read).
    uint64_t weight_bytes() const { return weight_bytes_; }
    // Floating-point operations of one image (2 per multiply-add: the patch embedding, the
    // projections, attention scores and sums, the FFN and the projector).
    double flops_per_image() const;
    // Peak bytes of activations while one image is encoded (what vision-cpu allocates).
    uint64_t activation_bytes() const;

private:
    ClipModel() = default;
    ClipHParams hp_;
    std::shared_ptr<const GgufFile> file_;
    std::vector<llmq_named_tensor> named_;
    std::string metadata_;
    uint64_t weight_bytes_ = 0;
};

}  // namespace llmq

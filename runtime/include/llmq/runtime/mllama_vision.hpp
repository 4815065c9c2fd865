// The vision side of Llama 3.2 Vision ("mllama"): the tiled image encoder of a single-file
// mllama GGUF, as Ollama's convert/convert_mllama.go (the one public converter) writes it, with
// Hugging Face's modeling_mllama.py / image_processing_mllama.py as the truth for what the
// weights mean. docs/vision.md ("Llama 3.2 Vision") says which rule comes from where.
//
// One image becomes `max_tiles` tiles of image_size² pixels (the first tiles_used of them real,
// the rest zero), encoded together by the vision plugin (llmq_vision_args.variant = the
// aspect-ratio id), and projected by mm.0 to the text model's width: HF's
// `cross_attention_states` for that image, which the text side's cross-attention layers turn
// into their keys and values.
//
// What is read and checked at open (a refusal names the file and the key or tensor):
//   general.architecture = "mllama";
//   mllama.vision.{block_count, global.block_count, embedding_length, feed_forward_length,
//   attention.head_count, attention.layer_norm_epsilon, image_size, patch_size, max_num_tiles,
//   num_channels (3)} and mllama.vision.intermediate_layers_indices (int array, each an index
//   into the local encoder's hidden states: 0 = its input, n = after n layers);
//   optional mllama.vision.image_mean / image_std [3] (the converter writes none: CLIP's, the
//   values of Meta's preprocessor_config.json);
//   tensors (GGUF names, converter's layout):
//     v.patch_embd.weight [D][3][p][p], v.class_embd [D],
//     v.position_embd.weight [P+1][D], v.position_embd.gate [1]        (holds 1 - tanh(gate))
//     v.tile_position_embd.weight [R][T·(P+1)·D], v.tile_position_embd.gate [1] (tanh(gate))
//     v.pre_tile_position_embd.{weight [R][T·D], gate [1]}, v.post_tile_position_embd.{...}
//     v.pre_ln.{weight,bias}, v.post_ln.{weight,bias}                   [D]
//     v.blk.N.{attn_norm, ffn_norm}.{weight,bias} [D], v.blk.N.attn_{q,k,v,output}.weight [D][D],
//     v.blk.N.ffn_up.{weight [F][D], bias [F]} (HF's fc1), v.blk.N.ffn_down.{weight [D][F],
//     bias [D]} (fc2); v.global.blk.N.* the same plus attn_gate [1], ffn_gate [1] (tanh(gate))
//     mm.0.{weight [N][D·(1 + intermediate layers)], bias [N]}
//   where D = embedding_length, F = feed_forward_length, p = patch_size, P = (image_size / p)²,
//   T = max_num_tiles, R = aspect-ratio rows (at least the number of tile grids + 1, id 0 being
//   HF's "no image"), N = projection_dim (the text model's embedding length).
//
// Threads: immutable after open; any thread. encode() on the worker of the vision device.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/image.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/status.hpp"
#include "llmq_plugin.h"

namespace llmq {

struct MllamaVisionHParams {
    int32_t image_size = 0;      // tile side in pixels (560 in Llama 3.2 Vision)
    int32_t patch_size = 0;      // 14
    int32_t dim = 0;             // embedding_length (1280)
    int32_t ff = 0;              // feed_forward_length (5120)
    int32_t heads = 0;           // 16
    int32_t layers = 0;          // local encoder layers (32)
    int32_t global_layers = 0;   // gated global encoder layers (8)
    int32_t max_tiles = 0;       // max_num_tiles (4)
    int32_t aspect_ratio_rows = 0;  // rows of the per-aspect-ratio tables (9 for 4 tiles)
    int32_t projection_dim = 0;  // mm.0's output: the text model's embedding length
    float eps = 1e-5f;           // the encoder layers' LayerNorm epsilon (norm_eps)
    std::vector<int32_t> intermediate_layers;  // e.g. {3, 7, 15, 23, 30}
    std::array<float, 3> mean{};
    std::array<float, 3> std{};

    int32_t grid() const { return image_size / patch_size; }
    int32_t patches() const { return grid() * grid(); }
    // Rows of one tile: the class row then the patches (1601 for 560/14).
    int32_t rows_per_tile() const { return patches() + 1; }
    // rows_per_tile rounded up to a multiple of 8, as the encoder pads each tile (1608).
    int32_t padded_rows_per_tile() const { return (rows_per_tile() + 7) / 8 * 8; }
    // The projector's input width: the final state then the intermediate layers (7680).
    int32_t feature_dim() const { return dim * (1 + static_cast<int32_t>(intermediate_layers.size())); }
};

// The tile grids a model with `max_tiles` tiles takes, in HF's order: (tiles high, tiles wide)
// for every pair with high * wide <= max_tiles, high outermost. Aspect-ratio id = index + 1.
// max_tiles 4: (1,1) (1,2) (1,3) (1,4) (2,1) (2,2) (3,1) (4,1).
struct MllamaTileGrid {
    int32_t high = 1;
    int32_t wide = 1;
};
std::vector<MllamaTileGrid> mllama_tile_grids(int32_t max_tiles);

// How one image is laid out (HF's get_optimal_tiled_canvas and get_image_size_fit_to_canvas):
// the grid whose canvas needs the smallest upscale >= 1 (or, when every canvas shrinks the
// image, the largest downscale), the smallest canvas among equals; the image is resized to
// resized_width x resized_height, keeping its aspect ratio, at the top left of that canvas.
struct MllamaCanvas {
    MllamaTileGrid grid;
    int32_t aspect_ratio_id = 0;  // 1-based index of grid in mllama_tile_grids(max_tiles)
    int32_t resized_width = 0;
    int32_t resized_height = 0;
    int32_t tiles() const { return grid.high * grid.wide; }
};
MllamaCanvas mllama_canvas(int32_t width, int32_t height, int32_t max_tiles, int32_t tile_size);

// HF's MllamaImageProcessor on one RGB image: the canvas above, PIL's bilinear resize
// (resize_bilinear, clip_preprocess.hpp), zero (black) padding to the canvas, rescale 1/255 and
// normalise with the model's mean/std, split into tiles row-major, then padded with all-zero
// tiles to max_tiles: [max_tiles][3][image_size][image_size] f32. canvas (optional) receives the
// layout. The tile mask of HF (aspect_ratio_mask) is "the first canvas->tiles() tiles".
std::vector<float> mllama_preprocess(const RgbImage& image, const MllamaVisionHParams& hp, MllamaCanvas* canvas);

// One image's projected cross-attention states.
struct MllamaImageFeatures {
    int32_t max_tiles = 0;        // tiles in `rows` (the model's max_num_tiles)
    int32_t tiles_used = 0;       // the first tiles_used tiles are the image; the rest padding
    int32_t rows_per_tile = 0;    // class row + patches (the 8-padding removed)
    int32_t dim = 0;              // values per row: the text model's embedding length
    int32_t aspect_ratio_id = 0;  // 1-based (llmq_vision_args.variant)
    MllamaTileGrid grid;          // the tile grid of the canvas
    // [max_tiles][rows_per_tile][dim] f32: mm.0 applied to every row, padded tiles included
    // (HF computes them; the text side's mask keeps its queries off them).
    std::vector<float> rows;
};

class MllamaVisionModel {
public:
    // Open and check the vision part of an mllama GGUF. Errors: those of GgufFile::open;
    // invalid_argument naming the file and the key or tensor that is missing or wrong;
    // unsupported for a tensor type the encoder does not take.
    [[nodiscard]] static Expected<std::shared_ptr<const MllamaVisionModel>> open(const std::string& path);
    // The same on a file already open (the text side and the planner share it).
    [[nodiscard]] static Expected<std::shared_ptr<const MllamaVisionModel>> from_file(
        std::shared_ptr<const GgufFile> file);

    const MllamaVisionHParams& hparams() const { return hp_; }
    const GgufFile& file() const { return *file_; }
    // The v.* and mm.0 tensors the vision plugin gets (llmq_vision_ops.load_weights), views of
    // the file mapping with their GGUF names; valid while this object lives.
    const std::vector<llmq_named_tensor>& plugin_tensors() const { return named_; }
    // The metadata object of the ABI's vision contract for "mllama" (llmq_plugin.h), as JSON.
    const std::string& plugin_metadata() const { return metadata_; }
    // Bytes of the encoder's tensors (v.* and mm.0).
    uint64_t weight_bytes() const { return weight_bytes_; }
    // Floating-point operations of one image (2 per multiply-add, all max_tiles tiles: patch
    // embedding, both encoders' projections, attention and MLPs, the projector).
    double flops_per_image() const;
    // Peak bytes of activations while one image is encoded (what vision-cpu allocates, plus
    // the preprocessed tiles and the output rows).
    uint64_t activation_bytes() const;

    // Preprocess and encode one image into `out` (resized and overwritten). Errors:
    // invalid_argument for an image so thin that its resized side would be 0 pixels (8192x1
    // at 560 px tiles), and the plugin's (its status and message). Thread: the worker of the
    // vision plugin's device.
    [[nodiscard]] Status encode(const RgbImage& image, PluginInstance& vision, MllamaImageFeatures& out) const;

private:
    MllamaVisionModel() = default;
    MllamaVisionHParams hp_;
    std::shared_ptr<const GgufFile> file_;
    std::vector<llmq_named_tensor> named_;
    std::string metadata_;
    uint64_t weight_bytes_ = 0;
};

}  // namespace llmq

#include "llmq/runtime/mllama_vision.hpp"

#include <nlohmann/json.hpp>

#include "llmq/kernels/vision.hpp"
#include "vision_gguf.hpp"

namespace llmq {

namespace {

constexpr const char* kv_prefix = "mllama.vision.";

// CLIP's mean and std: Meta's preprocessor_config.json for Llama 3.2 Vision, and what Ollama's
// reader uses (the converter writes no mean/std keys).
constexpr std::array<float, 3> clip_mean = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr std::array<float, 3> clip_std = {0.26862954f, 0.26130258f, 0.27577711f};

}  // namespace

Expected<std::shared_ptr<const MllamaVisionModel>> MllamaVisionModel::open(const std::string& path) {
    return open_vision_model<MllamaVisionModel>(path);
}

Expected<std::shared_ptr<const MllamaVisionModel>> MllamaVisionModel::from_file(std::shared_ptr<const GgufFile> file) {
    const std::string& path = file->path();
    auto bad = [&](const std::string& why) { return invalid_argument(path + ": " + why); };
    auto key = [](const char* k) { return std::string(kv_prefix) + k; };
    auto arch = file->get_string_or("general.architecture", "");
    if (!arch) return arch.status();
    if (*arch != "mllama")
        return bad("general.architecture is \"" + *arch + "\", not \"mllama\": not a Llama 3.2 Vision file");
    std::shared_ptr<MllamaVisionModel> m(new MllamaVisionModel());
    m->file_ = file;
    MllamaVisionHParams& hp = m->hp_;
    LLMQ_TRY(read_sizes(*file, {{key("image_size"), &hp.image_size},
                                {key("patch_size"), &hp.patch_size},
                                {key("embedding_length"), &hp.dim},
                                {key("feed_forward_length"), &hp.ff},
                                {key("attention.head_count"), &hp.heads},
                                {key("block_count"), &hp.layers},
                                {key("global.block_count"), &hp.global_layers, 0},
                                {key("max_num_tiles"), &hp.max_tiles}}));
    if (hp.max_tiles > 16) return bad(key("max_num_tiles") + " = " + std::to_string(hp.max_tiles) + " is over 16");
    auto channels = file->get_u32(key("num_channels"));
    if (!channels) return channels.status().with_context(path);
    if (*channels != 3) return bad(key("num_channels") + " = " + std::to_string(*channels) + ": llmq takes RGB (3)");
    auto eps = file->get_f32(key("attention.layer_norm_epsilon"));
    if (!eps) return eps.status().with_context(path);
    if (!(*eps > 0)) return bad(key("attention.layer_norm_epsilon") + " is not > 0");
    hp.eps = *eps;
    LLMQ_TRY(check_vit_shape(*file, kv_prefix, hp.image_size, hp.patch_size, hp.dim, hp.heads));
    auto inter = file->get_i32_array(key("intermediate_layers_indices"));
    if (!inter) return inter.status().with_context(path);
    if (inter->empty()) return bad(key("intermediate_layers_indices") + " is empty");
    for (int32_t i : *inter)
        if (i < 0 || i > hp.layers)
            return bad(key("intermediate_layers_indices") + " holds " + std::to_string(i) + ", not in 0.." +
                       std::to_string(hp.layers) + " (an index into the local encoder's hidden states)");
    hp.intermediate_layers = *inter;
    hp.mean = clip_mean;
    hp.std = clip_std;
    if (file->has(key("image_mean"))) LLMQ_TRY(read_rgb(*file, key("image_mean"), false, hp.mean));
    if (file->has(key("image_std"))) LLMQ_TRY(read_rgb(*file, key("image_std"), true, hp.std));

    // ---- tensors: present, of the shape the keys imply (GGUF order: innermost first)
    const int64_t D = hp.dim, F = hp.ff, T = hp.max_tiles, Pp = hp.rows_per_tile(), p = hp.patch_size;
    PluginTensorList tensors(*file);
    auto need = [&](const std::string& name, std::vector<int64_t> shape) { return tensors.need(name, std::move(shape)); };
    const size_t grids = mllama_tile_grids(hp.max_tiles).size();
    const GgufTensor* pre_tile = file->tensor("v.pre_tile_position_embd.weight");
    if (!pre_tile || pre_tile->shape.size() != 2) return bad("tensor v.pre_tile_position_embd.weight is missing or not 2-D");
    hp.aspect_ratio_rows = static_cast<int32_t>(pre_tile->shape[1]);
    if (hp.aspect_ratio_rows < int64_t(grids) + 1)
        return bad("tensor v.pre_tile_position_embd.weight has " + std::to_string(hp.aspect_ratio_rows) +
                   " aspect-ratio rows; " + std::to_string(hp.max_tiles) + " tiles make " + std::to_string(grids) +
                   " grids, which need " + std::to_string(grids + 1));
    const int64_t R = hp.aspect_ratio_rows;
    LLMQ_TRY(need("v.patch_embd.weight", {p, p, 3, D}));
    LLMQ_TRY(need("v.class_embd", {D}));
    LLMQ_TRY(need("v.position_embd.weight", {D, Pp}));
    LLMQ_TRY(need("v.position_embd.gate", {1}));
    LLMQ_TRY(need("v.tile_position_embd.weight", {T * Pp * D, R}));
    LLMQ_TRY(need("v.tile_position_embd.gate", {1}));
    for (const char* n : {"v.pre_tile_position_embd", "v.post_tile_position_embd"}) {
        LLMQ_TRY(need(std::string(n) + ".weight", {T * D, R}));
        LLMQ_TRY(need(std::string(n) + ".gate", {1}));
    }
    for (const char* n : {"v.pre_ln", "v.post_ln"}) {
        LLMQ_TRY(need(std::string(n) + ".weight", {D}));
        LLMQ_TRY(need(std::string(n) + ".bias", {D}));
    }
    auto layer = [&](const std::string& b, bool gated) -> Status {
        for (const char* n : {"attn_norm", "ffn_norm"}) {
            LLMQ_TRY(need(b + n + ".weight", {D}));
            LLMQ_TRY(need(b + n + ".bias", {D}));
        }
        for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) LLMQ_TRY(need(b + n + ".weight", {D, D}));
        LLMQ_TRY(need(b + "ffn_up.weight", {D, F}));  // HF's fc1, by the converter's name
        LLMQ_TRY(need(b + "ffn_up.bias", {F}));
        LLMQ_TRY(need(b + "ffn_down.weight", {F, D}));  // fc2
        LLMQ_TRY(need(b + "ffn_down.bias", {D}));
        if (gated) {
            LLMQ_TRY(need(b + "attn_gate", {1}));
            LLMQ_TRY(need(b + "ffn_gate", {1}));
        }
        return {};
    };
    for (int32_t l = 0; l < hp.layers; ++l) LLMQ_TRY(layer("v.blk." + std::to_string(l) + ".", false));
    for (int32_t l = 0; l < hp.global_layers; ++l) LLMQ_TRY(layer("v.global.blk." + std::to_string(l) + ".", true));
    const GgufTensor* mm0 = file->tensor("mm.0.weight");
    if (!mm0 || mm0->shape.size() != 2) return bad("tensor mm.0.weight (the projector) is missing or not 2-D");
    hp.projection_dim = static_cast<int32_t>(mm0->shape[1]);
    LLMQ_TRY(need("mm.0.weight", {hp.feature_dim(), hp.projection_dim}));
    LLMQ_TRY(need("mm.0.bias", {hp.projection_dim}));
    LLMQ_TRY(tensors.check_data());
    m->named_ = std::move(tensors.named);
    m->weight_bytes_ = tensors.bytes;

    nlohmann::json grid_list = nlohmann::json::array();
    for (const MllamaTileGrid& g : mllama_tile_grids(hp.max_tiles)) grid_list.push_back({g.high, g.wide});
    nlohmann::json meta = vit_plugin_metadata("mllama", hp.image_size, hp.patch_size, hp.dim, hp.ff, hp.heads, hp.eps,
                                              hp.layers, hp.projection_dim);
    meta["global_layers"] = hp.global_layers;
    meta["intermediate_layers"] = hp.intermediate_layers;
    meta["max_num_tiles"] = hp.max_tiles;
    meta["aspect_ratio_rows"] = hp.aspect_ratio_rows;
    meta["tile_grids"] = grid_list;
    meta["activation"] = "gelu";
    meta["class_token"] = true;
    meta["projector"] = "linear";
    m->metadata_ = meta.dump();
    return std::shared_ptr<const MllamaVisionModel>(std::move(m));
}

double MllamaVisionModel::flops_per_image() const {
    const double T = hp_.max_tiles, P = hp_.patches(), N = T * hp_.padded_rows_per_tile(), D = hp_.dim, F = hp_.ff;
    const double K = 3.0 * hp_.patch_size * hp_.patch_size;
    const double per_layer = 2 * N * D * D * 4 + 2 * 2 * N * N * D + 2 * 2 * N * D * F;
    return 2 * T * P * D * K + (hp_.layers + hp_.global_layers) * per_layer +
           2 * T * hp_.rows_per_tile() * double(hp_.feature_dim()) * hp_.projection_dim;
}

uint64_t MllamaVisionModel::activation_bytes() const {
    // What vision-cpu's mllama encoder allocates (mllama_scratch_floats in
    // plugins/vision-cpu/mllama_encoder.cpp): seven [N][D] buffers, the MLP's [N][F], the
    // im2col of every tile, the kept intermediate states, the projector's input, one embedding
    // row, the attention's tables; then the tiles and the rows the runtime holds.
    const uint64_t T = uint64_t(hp_.max_tiles), N = T * uint64_t(hp_.padded_rows_per_tile()), D = uint64_t(hp_.dim);
    const uint64_t K = 3ull * uint64_t(hp_.patch_size) * uint64_t(hp_.patch_size);
    const uint64_t rows = T * uint64_t(hp_.rows_per_tile());
    const uint64_t floats = 7 * N * D + N * uint64_t(hp_.ff) + T * uint64_t(hp_.patches()) * K +
                            uint64_t(hp_.intermediate_layers.size()) * N * D + rows * uint64_t(hp_.feature_dim()) +
                            T * D + uint64_t(kernels::bidirectional_attention_index_ints(int32_t(N))) + N;
    const uint64_t io = T * 3ull * uint64_t(hp_.image_size) * uint64_t(hp_.image_size) +
                        rows * uint64_t(hp_.projection_dim);
    return (floats + io) * sizeof(float);
}

Status MllamaVisionModel::encode(const RgbImage& image, PluginInstance& vision, MllamaImageFeatures& out) const {
    const MllamaCanvas fit = mllama_canvas(image.width, image.height, hp_.max_tiles, hp_.image_size);
    if (fit.resized_width < 1 || fit.resized_height < 1)
        return invalid_argument("image: " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                                " is too thin for Llama 3.2 Vision's tiles: it would be resized to " +
                                std::to_string(fit.resized_width) + "x" + std::to_string(fit.resized_height) +
                                " on a " + std::to_string(fit.grid.wide) + "x" + std::to_string(fit.grid.high) +
                                " canvas (Hugging Face's processor refuses it too)");
    MllamaCanvas canvas;
    std::vector<float> pixels = mllama_preprocess(image, hp_, &canvas);
    LLMQ_TRY(vision.vision_load_weights(this, named_, metadata_));
    out.max_tiles = hp_.max_tiles;
    out.tiles_used = canvas.tiles();
    out.rows_per_tile = hp_.rows_per_tile();
    out.dim = hp_.projection_dim;
    out.aspect_ratio_id = canvas.aspect_ratio_id;
    out.grid = canvas.grid;
    const int64_t rows = int64_t(out.max_tiles) * out.rows_per_tile;
    out.rows.assign(size_t(rows) * size_t(out.dim), 0.0f);
    llmq_vision_args a{};
    a.struct_size = sizeof a;
    a.variant = static_cast<uint32_t>(canvas.aspect_ratio_id);
    a.pixels = dense_f32_tensor(pixels.data(), {hp_.max_tiles, 3, hp_.image_size, hp_.image_size});
    a.embeddings = dense_f32_tensor(out.rows.data(), {rows, out.dim});
    return vision.encode(a);
}

}  // namespace llmq

#include "llmq/runtime/clip_model.hpp"

#include <nlohmann/json.hpp>

#include "vision_gguf.hpp"

namespace llmq {

Expected<std::shared_ptr<const ClipModel>> ClipModel::open(const std::string& path) {
    return open_vision_model<ClipModel>(path);
}

Expected<std::shared_ptr<const ClipModel>> ClipModel::from_file(std::shared_ptr<const GgufFile> file) {
    const std::string& path = file->path();
    auto bad = [&](const std::string& why) { return invalid_argument(path + ": " + why); };
    auto arch = file->get_string_or("general.architecture", "");
    if (!arch) return arch.status();
    if (*arch != "clip")
        return bad("general.architecture is \"" + *arch + "\", not \"clip\": not a vision projector (mmproj) file");
    std::shared_ptr<ClipModel> m(new ClipModel());
    m->file_ = file;
    ClipHParams& hp = m->hp_;
    auto flag = [&](const char* key, bool fallback) { return file->get_bool_or(key, fallback); };
    auto has_vision = flag("clip.has_vision_encoder", false);
    auto has_llava = flag("clip.has_llava_projector", false);
    auto gelu = flag("clip.use_gelu", false);
    if (!has_vision || !has_llava || !gelu)
        return (!has_vision ? has_vision : !has_llava ? has_llava : gelu).status();
    if (!*has_vision) return bad("clip.has_vision_encoder is not true: the file has no vision tower");
    if (!*has_llava) return bad("clip.has_llava_projector is not true: the file has no LLaVA projector");
    hp.quick_gelu = !*gelu;
    auto projector = file->get_string_or("clip.projector_type", "mlp");
    if (!projector) return projector.status();
    if (*projector != "mlp")
        return unsupported(path + ": clip.projector_type \"" + *projector + "\" is not implemented (llmq runs \"mlp\", "
                           "LLaVA-1.5's)");
    LLMQ_TRY(read_sizes(*file, {{"clip.vision.image_size", &hp.image_size},
                                {"clip.vision.patch_size", &hp.patch_size},
                                {"clip.vision.embedding_length", &hp.dim},
                                {"clip.vision.feed_forward_length", &hp.ff},
                                {"clip.vision.attention.head_count", &hp.heads},
                                {"clip.vision.block_count", &hp.block_count}}));
    auto eps = file->get_f32("clip.vision.attention.layer_norm_epsilon");
    if (!eps) return eps.status().with_context(path);
    hp.eps = *eps;
    LLMQ_TRY(check_vit_shape(*file, "clip.vision.", hp.image_size, hp.patch_size, hp.dim, hp.heads));
    LLMQ_TRY(read_rgb(*file, "clip.vision.image_mean", false, hp.mean));
    LLMQ_TRY(read_rgb(*file, "clip.vision.image_std", true, hp.std));
    // The feature layer: an index into the encoder's hidden states (0: the embeddings, n: after
    // n layers). LLaVA-1.5 takes -2, the second to last, which is also llama.cpp's default.
    hp.layers = hp.block_count - 1;
    if (file->has("clip.vision.feature_layer")) {
        auto layers = file->get_i32_array("clip.vision.feature_layer");
        if (!layers) return layers.status().with_context(path);
        if (layers->size() != 1)
            return unsupported(path + ": clip.vision.feature_layer lists " + std::to_string(layers->size()) +
                               " layers; llmq runs one (stacked feature layers, as Granite vision uses, are not done)");
        hp.layers = (*layers)[0];
    }
    if (hp.layers < 1 || hp.layers > hp.block_count)
        return bad("the feature layer " + std::to_string(hp.layers) + " is not in 1.." + std::to_string(hp.block_count));

    // ---- tensors: present, of the shape the keys imply (GGUF order: innermost first)
    const int64_t D = hp.dim, P = hp.patches(), p = hp.patch_size;
    PluginTensorList tensors(*file);
    auto need = [&](const std::string& name, std::vector<int64_t> shape) { return tensors.need(name, std::move(shape)); };
    LLMQ_TRY(need("v.patch_embd.weight", {p, p, 3, D}));
    LLMQ_TRY(need("v.class_embd", {D}));
    LLMQ_TRY(need("v.position_embd.weight", {D, P + 1}));
    LLMQ_TRY(need("v.pre_ln.weight", {D}));
    LLMQ_TRY(need("v.pre_ln.bias", {D}));
    for (int32_t l = 0; l < hp.layers; ++l) {
        const std::string b = "v.blk." + std::to_string(l) + ".";
        for (const char* n : {"ln1", "ln2"}) {
            LLMQ_TRY(need(b + n + ".weight", {D}));
            LLMQ_TRY(need(b + n + ".bias", {D}));
        }
        for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
            LLMQ_TRY(need(b + n + ".weight", {D, D}));
            LLMQ_TRY(need(b + n + ".bias", {D}));
        }
        LLMQ_TRY(need(b + "ffn_down.weight", {D, hp.ff}));  // CLIP's fc1, by the converter's name
        LLMQ_TRY(need(b + "ffn_down.bias", {hp.ff}));
        LLMQ_TRY(need(b + "ffn_up.weight", {hp.ff, D}));    // fc2
        LLMQ_TRY(need(b + "ffn_up.bias", {D}));
    }
    const GgufTensor* mm0 = file->tensor("mm.0.weight");
    if (!mm0 || mm0->shape.size() != 2) return bad("tensor mm.0.weight (the projector's first layer) is missing or not 2-D");
    hp.projection_dim = static_cast<int32_t>(mm0->shape[1]);
    LLMQ_TRY(need("mm.0.weight", {D, hp.projection_dim}));
    LLMQ_TRY(need("mm.0.bias", {hp.projection_dim}));
    LLMQ_TRY(need("mm.2.weight", {hp.projection_dim, hp.projection_dim}));
    LLMQ_TRY(need("mm.2.bias", {hp.projection_dim}));
    LLMQ_TRY(tensors.check_data());
    m->named_ = std::move(tensors.named);
    m->weight_bytes_ = tensors.bytes;

    nlohmann::json meta = vit_plugin_metadata("clip", hp.image_size, hp.patch_size, hp.dim, hp.ff, hp.heads, hp.eps,
                                              hp.layers, hp.projection_dim);
    meta["activation"] = hp.quick_gelu ? "quick_gelu" : "gelu";
    meta["class_token"] = true;
    meta["drop_class_token"] = true;
    meta["projector"] = "mlp";
    m->metadata_ = meta.dump();
    return std::shared_ptr<const ClipModel>(std::move(m));
}

double ClipModel::flops_per_image() const {
    const double P = hp_.patches(), T = P + 1, D = hp_.dim, F = hp_.ff, N = hp_.projection_dim;
    const double K = 3.0 * hp_.patch_size * hp_.patch_size;
    const double per_layer = 2 * T * D * D * 4 + 2 * 2 * T * T * D + 2 * 2 * T * D * F;
    return 2 * P * D * K + hp_.layers * per_layer + 2 * P * D * N + 2 * P * N * N;
}

uint64_t ClipModel::activation_bytes() const {
    const uint64_t P = static_cast<uint64_t>(hp_.patches()), T = P + 1, D = static_cast<uint64_t>(hp_.dim);
    const uint64_t K = 3ull * static_cast<uint64_t>(hp_.patch_size) * static_cast<uint64_t>(hp_.patch_size);
    const uint64_t floats = 7 * T * D + T * static_cast<uint64_t>(hp_.ff) + P * K +
                            P * static_cast<uint64_t>(hp_.projection_dim) + 3 * T + 1;
    // The preprocessed image and the embeddings the runtime holds beside them.
    const uint64_t io = 3ull * static_cast<uint64_t>(hp_.image_size) * static_cast<uint64_t>(hp_.image_size) +
                        P * static_cast<uint64_t>(hp_.projection_dim);
    return (floats + io) * sizeof(float);
}

}  // namespace llmq

#include "llmq/runtime/vision_encoder.hpp"

#include <algorithm>

#include "llmq/runtime/clip_preprocess.hpp"
#include "vision_gguf.hpp"

namespace llmq {

Expected<std::unique_ptr<VisionEncoder>> VisionEncoder::create(std::shared_ptr<const ClipModel> model,
                                                               int64_t text_dim, ImageLimits limits) {
    if (model->hparams().projection_dim != text_dim)
        return invalid_argument(model->file().path() + ": the projector writes " +
                                std::to_string(model->hparams().projection_dim) +
                                "-value embeddings, the text model's embedding length is " + std::to_string(text_dim) +
                                ": this projector belongs to another model");
    std::unique_ptr<VisionEncoder> e(new VisionEncoder());
    e->model_ = std::move(model);
    e->limits_ = limits;
    return e;
}

Expected<PromptWithImages> VisionEncoder::place_images(const Tokenizer& tokenizer, const std::string& text,
                                                       size_t images, bool add_bos, bool parse_special) const {
    const std::string marker = default_image_marker;
    std::vector<std::string> pieces;
    for (size_t at = 0;;) {
        const size_t next = text.find(marker, at);
        pieces.push_back(text.substr(at, next == std::string::npos ? std::string::npos : next - at));
        if (next == std::string::npos) break;
        at = next + marker.size();
    }
    const size_t markers = pieces.size() - 1;
    if (markers != 0 && markers != images)
        return invalid_argument("prompt: " + std::to_string(markers) + " " + marker + " marker(s) for " +
                                std::to_string(images) + " image(s); mark every image or none (then they go first)");
    const int32_t placeholder = tokenizer.bos() >= 0 ? tokenizer.bos() : 0;
    const int32_t n = tokens_per_image();
    PromptWithImages out;
    auto add_image = [&] {
        out.image_start.push_back(static_cast<int32_t>(out.tokens.size()));
        out.tokens.insert(out.tokens.end(), static_cast<size_t>(n), placeholder);
    };
    if (markers == 0) {
        out.tokens = tokenizer.encode(text, add_bos, parse_special);
        const size_t at = (add_bos && !out.tokens.empty() && out.tokens[0] == tokenizer.bos()) ? 1 : 0;
        std::vector<int32_t> rest(out.tokens.begin() + static_cast<std::ptrdiff_t>(at), out.tokens.end());
        out.tokens.resize(at);
        for (size_t i = 0; i < images; ++i) add_image();
        out.tokens.insert(out.tokens.end(), rest.begin(), rest.end());
        return out;
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
        if (i > 0) add_image();
        if (pieces[i].empty() && !(i == 0 && add_bos)) continue;
        auto t = tokenizer.encode(pieces[i], i == 0 && add_bos, parse_special);
        out.tokens.insert(out.tokens.end(), t.begin(), t.end());
    }
    return out;
}

Expected<PromptWithImages> VisionEncoder::place_images(const Tokenizer& tokenizer, std::span<const int32_t> tokens,
                                                       size_t images) const {
    const auto marks = static_cast<size_t>(std::count(tokens.begin(), tokens.end(), image_prompt_token));
    if (marks != images)
        return invalid_argument("prompt_tokens: " + std::to_string(marks) + " image mark(s) (" +
                                std::to_string(image_prompt_token) + ") for " + std::to_string(images) +
                                " image(s); put one where each image goes");
    const int32_t placeholder = tokenizer.bos() >= 0 ? tokenizer.bos() : 0;
    PromptWithImages out;
    for (int32_t t : tokens) {
        if (t != image_prompt_token) {
            out.tokens.push_back(t);
            continue;
        }
        out.image_start.push_back(static_cast<int32_t>(out.tokens.size()));
        out.tokens.insert(out.tokens.end(), static_cast<size_t>(tokens_per_image()), placeholder);
    }
    return out;
}

Status VisionEncoder::encode(const RgbImage& image, PluginInstance& vision, float* out) const {
    const ClipHParams& hp = model_->hparams();
    std::vector<float> pixels = clip_preprocess(image, hp);
    LLMQ_TRY(vision.vision_load_weights(this, model_->plugin_tensors(), model_->plugin_metadata()));
    llmq_vision_args a{};
    a.struct_size = sizeof a;
    a.pixels = dense_f32_tensor(pixels.data(), {3, hp.image_size, hp.image_size});
    a.embeddings = dense_f32_tensor(out, {hp.patches(), hp.projection_dim});
    return vision.encode(a);
}

}  // namespace llmq

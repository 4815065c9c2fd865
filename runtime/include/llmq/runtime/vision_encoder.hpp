// The runtime side of a LLaVA-style vision model: a projector file (ClipModel) paired with the
// text model, the image decoding limits, and where image embeddings go in the prompt.
//
// A request's images enter the prompt as runs of tokens_per_image() placeholder positions,
// each position's input embedding being one row of the image's projected embeddings instead
// of a token's. The prompt text marks each image with image_marker ("<image>", as LLaVA's
// prompts write it); a prompt without the marker gets its images before the text, after BOS
// (LLaVA-1.5's default, and llama.cpp's llava-cli's). The markers and images must agree in
// number. The placeholder's token id (the id the sampler's penalties and FinishInfo see) is
// the model's BOS id: it never reaches the embedding table, and the text keeps its own tokens.
//
// encode() runs on a device's worker: preprocessing (clip_preprocess.hpp), then the device's
// vision plugin (which gets the weights once per instance, so a swapped-in plugin is loaded
// before its first image). Threads: const methods from any thread; encode on the worker.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llmq/runtime/clip_model.hpp"
#include "llmq/runtime/image.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/status.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq {

inline constexpr const char* default_image_marker = "<image>";
// A token prompt's mark for one image (the client protocol's kImagePromptToken, LLMQ_IMAGE_TOKEN).
inline constexpr int32_t image_prompt_token = -1;

// A prompt's tokens with its images placed: tokens[image_start[i] ..] are the placeholder
// positions of image i (tokens_per_image of them).
struct PromptWithImages {
    std::vector<int32_t> tokens;
    std::vector<int32_t> image_start;
};

class VisionEncoder {
public:
    // Pair a projector with a text model of embedding length text_dim. invalid_argument when
    // the projector's output does not have text_dim values.
    [[nodiscard]] static Expected<std::unique_ptr<VisionEncoder>> create(std::shared_ptr<const ClipModel> model,
                                                                         int64_t text_dim, ImageLimits limits);

    const ClipModel& model() const { return *model_; }
    const ImageLimits& limits() const { return limits_; }
    int32_t tokens_per_image() const { return model_->hparams().patches(); }
    int32_t embedding_dim() const { return model_->hparams().projection_dim; }

    // Tokenize `text` with `images` images placed as the class comment says. invalid_argument
    // when the markers and the images disagree in number.
    [[nodiscard]] Expected<PromptWithImages> place_images(const Tokenizer& tokenizer, const std::string& text,
                                                          size_t images, bool add_bos, bool parse_special) const;

    // Token ids with one image_prompt_token where each image goes (a chat prompt rendered with
    // image parts): each mark widened to the image's placeholder positions. invalid_argument
    // when marks and images disagree in number.
    [[nodiscard]] Expected<PromptWithImages> place_images(const Tokenizer& tokenizer, std::span<const int32_t> tokens,
                                                          size_t images) const;

    // Preprocess and encode one image: out receives tokens_per_image() x embedding_dim()
    // floats. Thread: the worker of vision's device (a CPU device).
    [[nodiscard]] Status encode(const RgbImage& image, PluginInstance& vision, float* out) const;

private:
    VisionEncoder() = default;
    std::shared_ptr<const ClipModel> model_;
    ImageLimits limits_;
};

}  // namespace llmq

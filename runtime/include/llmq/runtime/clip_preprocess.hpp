// LLaVA-1.5's image preprocessing, as the original LLaVA code and Hugging Face's
// CLIPImageProcessor define it (image_aspect_ratio = "pad"):
//   1. pad to a square (expand2square): the image centred on a canvas of its longer side,
//      filled with the mean colour as bytes, int(mean * 255) per channel;
//   2. resize to image_size x image_size with PIL's bicubic filter (a = -0.5, widened by the
//      scale when shrinking, so it averages like PIL's antialiased resize), horizontal pass
//      then vertical, each rounded to bytes with PIL's 22-bit fixed-point weights;
//      (the shortest-edge resize and the centre crop of CLIPImageProcessor are then identity)
//   3. rescale by 1/255 and normalise with the file's mean and std, planar [3][H][W] f32.
// llama.cpp's own llava path resizes with a different bicubic (no antialiasing); llmq follows
// the Python reference the model was trained with. Threads: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "llmq/runtime/clip_model.hpp"
#include "llmq/runtime/image.hpp"

namespace llmq {

// Step 1. background: the fill colour (R, G, B).
RgbImage pad_to_square(const RgbImage& image, std::array<uint8_t, 3> background);
// Step 2 for any size (width, height >= 1).
RgbImage resize_bicubic(const RgbImage& image, int32_t width, int32_t height);
// The same with PIL's bilinear filter (the triangle, support 1, widened by the scale when
// shrinking): Image.resize(..., BILINEAR), which Llama 3.2 Vision's MllamaImageProcessor uses.
RgbImage resize_bilinear(const RgbImage& image, int32_t width, int32_t height);
// Step 3: [3][height][width], (v / 255 - mean[c]) / std[c].
std::vector<float> normalize_planar(const RgbImage& image, const std::array<float, 3>& mean,
                                    const std::array<float, 3>& std);
// All three with the model's image_size, mean and std.
std::vector<float> clip_preprocess(const RgbImage& image, const ClipHParams& hp);

}  // namespace llmq

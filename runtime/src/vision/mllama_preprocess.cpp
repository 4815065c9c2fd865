// Llama 3.2 Vision's image preprocessing, as Hugging Face's MllamaImageProcessor defines it
// (image_processing_mllama.py). Ollama's reader differs (its grid numbering is (wide, high),
// it resizes with Go's bilinear and takes "scale > 1" for an upscale); llmq follows HF, which
// matches the processor the model was trained with.
#include <algorithm>
#include <cmath>

#include "llmq/runtime/clip_preprocess.hpp"
#include "llmq/runtime/mllama_vision.hpp"

namespace llmq {

std::vector<MllamaTileGrid> mllama_tile_grids(int32_t max_tiles) {
    // get_all_supported_aspect_ratios: the pairs come out as (a, b) with a outermost, and
    // get_optimal_tiled_canvas reads a as the height (target_heights, target_widths = sizes.T).
    std::vector<MllamaTileGrid> grids;
    for (int32_t high = 1; high <= max_tiles; ++high)
        for (int32_t wide = 1; wide <= max_tiles; ++wide)
            if (high * wide <= max_tiles) grids.push_back({high, wide});
    return grids;
}

MllamaCanvas mllama_canvas(int32_t width, int32_t height, int32_t max_tiles, int32_t tile_size) {
    const std::vector<MllamaTileGrid> grids = mllama_tile_grids(max_tiles);
    // The limiting side's scale of each canvas, in double as numpy computes it.
    std::vector<double> scales;
    for (const MllamaTileGrid& g : grids) {
        const double scale_h = double(g.high * tile_size) / height;
        const double scale_w = double(g.wide * tile_size) / width;
        scales.push_back(scale_w > scale_h ? scale_h : scale_w);
    }
    // The smallest upscale (scale >= 1), else the largest downscale.
    double selected = 0;
    bool upscale = false;
    for (double s : scales)
        if (s >= 1 && (!upscale || s < selected)) selected = s, upscale = true;
    if (!upscale)
        for (double s : scales) selected = std::max(selected, s);
    // Among canvases of exactly that scale, the first of least area (np.argmin).
    size_t best = grids.size();
    for (size_t i = 0; i < grids.size(); ++i)
        if (scales[i] == selected &&
            (best == grids.size() || grids[i].high * grids[i].wide < grids[best].high * grids[best].wide))
            best = i;
    MllamaCanvas c;
    c.grid = grids[best];
    c.aspect_ratio_id = static_cast<int32_t>(best) + 1;
    // get_image_size_fit_to_canvas: the target size clipped between a tile and the canvas,
    // then the side with the smaller scale is the target and the other follows, floored.
    const int32_t canvas_h = c.grid.high * tile_size, canvas_w = c.grid.wide * tile_size;
    const int32_t target_w = std::clamp(width, tile_size, canvas_w);
    const int32_t target_h = std::clamp(height, tile_size, canvas_h);
    const double scale_h = double(target_h) / height, scale_w = double(target_w) / width;
    if (scale_w < scale_h) {
        c.resized_width = target_w;
        c.resized_height = std::min(static_cast<int32_t>(std::floor(height * scale_w)), target_h);
    } else {
        c.resized_height = target_h;
        c.resized_width = std::min(static_cast<int32_t>(std::floor(width * scale_h)), target_w);
    }
    return c;
}

std::vector<float> mllama_preprocess(const RgbImage& image, const MllamaVisionHParams& hp, MllamaCanvas* canvas) {
    const int32_t S = hp.image_size;
    const MllamaCanvas c = mllama_canvas(image.width, image.height, hp.max_tiles, S);
    if (canvas) *canvas = c;
    // HF resizes even when the size is unchanged; PIL then copies.
    const RgbImage resized = resize_bilinear(image, c.resized_width, c.resized_height);
    // rescale: float64 v * (1/255) stored as float32; normalize: (x - mean) / std in float32.
    // The padding (pad() with 0, before the rescale) is black, normalised like any pixel; the
    // tiles past the grid are zeros after normalisation (pack_images).
    std::array<std::array<float, 256>, 3> value{};
    for (size_t ch = 0; ch < 3; ++ch)
        for (int v = 0; v < 256; ++v)
            value[ch][size_t(v)] = (static_cast<float>(double(v) * (1.0 / 255.0)) - hp.mean[ch]) / hp.std[ch];
    const size_t plane = size_t(S) * size_t(S);
    std::vector<float> out(size_t(hp.max_tiles) * 3 * plane, 0.0f);
    for (int32_t ty = 0; ty < c.grid.high; ++ty)
        for (int32_t tx = 0; tx < c.grid.wide; ++tx) {
            float* tile = out.data() + size_t(ty * c.grid.wide + tx) * 3 * plane;
            for (int32_t y = 0; y < S; ++y)
                for (int32_t x = 0; x < S; ++x) {
                    const int32_t cx = tx * S + x, cy = ty * S + y;
                    const bool inside = cx < resized.width && cy < resized.height;
                    for (size_t ch = 0; ch < 3; ++ch)
                        tile[ch * plane + size_t(y) * size_t(S) + size_t(x)] =
                            value[ch][inside ? resized.at(cx, cy, int(ch)) : 0];
                }
        }
    return out;
}

}  // namespace llmq

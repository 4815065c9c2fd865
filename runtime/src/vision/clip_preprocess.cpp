#include "llmq/runtime/clip_preprocess.hpp"

#include <algorithm>
#include <cmath>

namespace llmq {

RgbImage pad_to_square(const RgbImage& image, std::array<uint8_t, 3> background) {
    if (image.width == image.height) return image;
    const int32_t side = std::max(image.width, image.height);
    RgbImage out;
    out.width = out.height = side;
    out.pixels.resize(static_cast<size_t>(side) * side * 3);
    for (size_t i = 0; i < out.pixels.size(); i += 3)
        for (int c = 0; c < 3; ++c) out.pixels[i + static_cast<size_t>(c)] = background[static_cast<size_t>(c)];
    // expand2square pastes at ((side - w) // 2, (side - h) // 2).
    const int32_t x0 = (side - image.width) / 2, y0 = (side - image.height) / 2;
    for (int32_t y = 0; y < image.height; ++y)
        std::copy_n(&image.pixels[static_cast<size_t>(y) * image.width * 3], static_cast<size_t>(image.width) * 3,
                    &out.pixels[(static_cast<size_t>(y + y0) * side + x0) * 3]);
    return out;
}

namespace {

// PIL's filters (Resample.c): bicubic with a = -0.5 (support 2) and the triangle of
// bilinear (support 1).
double bicubic(double x) {
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

double bilinear(double x) {
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

struct resample_filter {
    double (*value)(double);
    double support;
};

constexpr int precision_bits = 32 - 8 - 2;  // PIL's fixed point for 8-bit images

// For each output index, the first input index and the fixed-point weights (PIL's
// precompute_coeffs and normalize_coeffs_8bpc, including its multiply by 1 / filterscale).
struct axis_weights {
    std::vector<int32_t> first;
    std::vector<std::vector<int32_t>> k;
};

axis_weights weights(const resample_filter& filter, int32_t in, int32_t out) {
    axis_weights w;
    const double scale = double(in) / out;
    const double filter_scale = std::max(scale, 1.0);
    const double support = filter.support * filter_scale;
    const double inverse_scale = 1.0 / filter_scale;
    for (int32_t i = 0; i < out; ++i) {
        const double center = (i + 0.5) * scale;
        const int32_t lo = std::max(static_cast<int32_t>(center - support + 0.5), 0);
        const int32_t hi = std::min(static_cast<int32_t>(center + support + 0.5), in);
        std::vector<double> k(static_cast<size_t>(std::max(hi - lo, 0)));
        double sum = 0;
        for (int32_t x = lo; x < hi; ++x)
            sum += (k[static_cast<size_t>(x - lo)] = filter.value((x - center + 0.5) * inverse_scale));
        std::vector<int32_t> ki(k.size());
        for (size_t j = 0; j < k.size(); ++j) {
            const double v = (sum != 0 ? k[j] / sum : 0) * double(1 << precision_bits);
            ki[j] = static_cast<int32_t>(v < 0 ? std::trunc(-0.5 + v) : std::trunc(0.5 + v));
        }
        w.first.push_back(lo);
        w.k.push_back(std::move(ki));
    }
    return w;
}

uint8_t clip8(int64_t v) {
    v >>= precision_bits;
    return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}

// One pass along x (horizontal) or y, into a new image.
RgbImage pass(const resample_filter& filter, const RgbImage& in, int32_t out_w, int32_t out_h, bool horizontal) {
    const axis_weights w = horizontal ? weights(filter, in.width, out_w) : weights(filter, in.height, out_h);
    RgbImage out;
    out.width = out_w;
    out.height = out_h;
    out.pixels.resize(static_cast<size_t>(out_w) * out_h * 3);
    for (int32_t y = 0; y < out_h; ++y)
        for (int32_t x = 0; x < out_w; ++x) {
            const int32_t i = horizontal ? x : y;
            for (int c = 0; c < 3; ++c) {
                int64_t acc = int64_t(1) << (precision_bits - 1);
                const auto& k = w.k[static_cast<size_t>(i)];
                for (size_t j = 0; j < k.size(); ++j) {
                    const int32_t src = w.first[static_cast<size_t>(i)] + static_cast<int32_t>(j);
                    acc += int64_t(horizontal ? in.at(src, y, c) : in.at(x, src, c)) * k[j];
                }
                out.pixels[(static_cast<size_t>(y) * out_w + x) * 3 + static_cast<size_t>(c)] = clip8(acc);
            }
        }
    return out;
}

// PIL's ImagingResample: the horizontal pass, then the vertical, each only where the size
// changes (so a same-size resize is a copy, as Image.resize).
RgbImage resize_with(const resample_filter& filter, const RgbImage& image, int32_t width, int32_t height) {
    RgbImage out = image;
    if (width != image.width) out = pass(filter, out, width, out.height, true);
    if (height != image.height) out = pass(filter, out, width, height, false);
    return out;
}

}  // namespace

RgbImage resize_bicubic(const RgbImage& image, int32_t width, int32_t height) {
    return resize_with({bicubic, 2.0}, image, width, height);
}

RgbImage resize_bilinear(const RgbImage& image, int32_t width, int32_t height) {
    return resize_with({bilinear, 1.0}, image, width, height);
}

std::vector<float> normalize_planar(const RgbImage& image, const std::array<float, 3>& mean,
                                    const std::array<float, 3>& std) {
    const size_t plane = static_cast<size_t>(image.width) * image.height;
    std::vector<float> out(3 * plane);
    for (size_t p = 0; p < plane; ++p)
        for (size_t c = 0; c < 3; ++c)
            out[c * plane + p] = (static_cast<float>(image.pixels[p * 3 + c]) * (1.0f / 255.0f) - mean[c]) / std[c];
    return out;
}

std::vector<float> clip_preprocess(const RgbImage& image, const ClipHParams& hp) {
    std::array<uint8_t, 3> background{};
    for (size_t c = 0; c < 3; ++c) background[c] = static_cast<uint8_t>(std::clamp(hp.mean[c], 0.0f, 1.0f) * 255.0f);
    const RgbImage square = pad_to_square(image, background);
    return normalize_planar(resize_bicubic(square, hp.image_size, hp.image_size), hp.mean, hp.std);
}

}  // namespace llmq

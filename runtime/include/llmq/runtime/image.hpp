// Decoding a client's image bytes (PNG or JPEG) into 8-bit RGB, with limits checked from the
// header before a pixel is decoded.
//
// The bytes are hostile. decode_image() first walks the file's structure itself (PNG: the
// signature, every chunk's length and CRC, IHDR first, IEND last; JPEG: SOI, every marker
// segment's length, the entropy-coded data up to EOI), so a truncated or corrupt file is
// refused naming the chunk or marker and its byte offset, where stb_image alone would fill
// the missing part with grey. Then it reads the dimensions from the header and refuses an
// image wider or taller than max_dimension or with more than max_pixels pixels (a 30 KB PNG
// can claim 64 megapixels) before stb_image decodes anything.
//
// What is taken and what is refused:
//   PNG: 8-bit and 16-bit (reduced to 8 bits: the high byte, as stb_image does), grey, grey +
//        alpha, RGB, RGBA, palette (expanded); interlaced. Alpha is dropped, not composited
//        (as PIL's convert("RGB") does, which the CLIP preprocessors call).
//   JPEG: baseline and progressive, grey, YCbCr, CMYK and YCCK (Adobe APP14; converted to RGB
//        by stb_image). Refused: arithmetic coding and 12-bit samples (stb_image cannot), and
//        anything that is neither PNG nor JPEG (named by its first bytes).
//
// Threads: pure; any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

struct ImageLimits {
    int64_t max_dimension = 8192;       // pixels of the width and of the height
    int64_t max_pixels = 16ll << 20;    // width * height
    // Per request (the engine checks these before decoding any image).
    int32_t max_images = 4;
    uint64_t max_total_bytes = 8ull << 20;  // encoded bytes of all its images
};

// An 8-bit RGB image, rows top to bottom, pixels interleaved R G B.
struct RgbImage {
    int32_t width = 0;
    int32_t height = 0;
    std::vector<uint8_t> pixels;  // width * height * 3
    uint8_t at(int32_t x, int32_t y, int c) const {
        return pixels[(static_cast<size_t>(y) * width + x) * 3 + c];
    }
};

enum class ImageFormat { png, jpeg };
const char* image_format_name(ImageFormat f);  // "PNG" | "JPEG"

// What the header says, without decoding pixels.
struct ImageHeader {
    ImageFormat format = ImageFormat::png;
    int32_t width = 0;
    int32_t height = 0;
    int32_t bit_depth = 8;  // PNG: 1, 2, 4, 8 or 16; JPEG: 8 (12 is refused)
    bool progressive = false;  // JPEG
    int32_t components = 3;    // JPEG: 1, 3 or 4 (CMYK / YCCK)
};

// Check the structure and read the header. invalid_argument: "image: ..." naming the defect
// and its byte offset; unsupported: a valid file of a kind this decoder does not take.
[[nodiscard]] Expected<ImageHeader> read_image_header(std::span<const uint8_t> bytes);

// read_image_header, the limits, then the pixels. The errors of read_image_header, and
// invalid_argument naming the dimension or pixel count and the limit it passes.
[[nodiscard]] Expected<RgbImage> decode_image(std::span<const uint8_t> bytes, const ImageLimits& limits);

}  // namespace llmq

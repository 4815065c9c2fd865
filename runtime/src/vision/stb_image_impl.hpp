// The one place that calls stb_image (stb_image_impl.cpp compiles it). decode_image
// (image_decode.cpp) walks the structure and checks the limits first; this only decodes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

namespace llmq::stb {

struct FreePixels {
    void operator()(uint8_t* p) const;
};
using Pixels = std::unique_ptr<uint8_t, FreePixels>;

// Decode PNG or JPEG bytes to 8-bit RGB (3 bytes per pixel, rows top down). On failure: null,
// and failure_reason() says why (stb_image's words; thread-local).
Pixels decode_rgb(std::span<const uint8_t> bytes, int& width, int& height);
const char* failure_reason();

}  // namespace llmq::stb

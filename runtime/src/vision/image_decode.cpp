// decode_image (image.hpp): the header walk and the limits first, then stb_image for the
// pixels. stb_image is compiled here, static to this file, with only its PNG and JPEG readers
// and no stdio, so no other copy of it in the process can clash with this one.
#include <cstdlib>
#include <cstring>

#include "llmq/runtime/image.hpp"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
// stb_image's own cap, above any limit the configuration allows (image.hpp checks first).
#define STBI_MAX_DIMENSIONS (1 << 16)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace llmq {

Expected<RgbImage> decode_image(std::span<const uint8_t> bytes, const ImageLimits& limits) {
    auto header = read_image_header(bytes);
    if (!header) return header.status();
    const ImageHeader& h = *header;
    const std::string size = std::to_string(h.width) + " x " + std::to_string(h.height);
    const char* format = image_format_name(h.format);
    if (h.width > limits.max_dimension || h.height > limits.max_dimension)
        return invalid_argument(std::string("image: ") + format + " of " + size + " pixels: a side is over " +
                                "the limit of " + std::to_string(limits.max_dimension) +
                                " ([ipc] max_image_dimension); scale it down");
    const int64_t pixels = int64_t(h.width) * h.height;
    if (pixels > limits.max_pixels)
        return invalid_argument(std::string("image: ") + format + " of " + size + " = " + std::to_string(pixels) +
                                " pixels is over the limit of " + std::to_string(limits.max_pixels) +
                                " ([ipc] max_image_pixels); scale it down");
    if (bytes.size() > static_cast<size_t>(INT32_MAX))
        return invalid_argument("image: " + std::to_string(bytes.size()) + " bytes is over 2 GiB");
    int w = 0, hh = 0, channels = 0;
    stbi_uc* data = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &hh, &channels, 3);
    if (!data)
        return invalid_argument(std::string("image: ") + format + " of " + size + " could not be decoded: " +
                                stbi_failure_reason());
    RgbImage out;
    if (w != h.width || hh != h.height) {
        stbi_image_free(data);
        return internal_error("image: the decoder read " + std::to_string(w) + " x " + std::to_string(hh) +
                              " where the header says " + size);
    }
    out.width = w;
    out.height = hh;
    out.pixels.assign(data, data + static_cast<size_t>(pixels) * 3);
    stbi_image_free(data);
    return out;
}

}  // namespace llmq

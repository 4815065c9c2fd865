// decode_image (image.hpp): the header walk and the limits first, then stb_image for the
// pixels (stb_image_impl.cpp).
#include <cstdlib>
#include <cstring>

#include "llmq/runtime/image.hpp"
#include "stb_image_impl.hpp"

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
    int w = 0, hh = 0;
    stb::Pixels data = stb::decode_rgb(bytes, w, hh);
    if (!data)
        return invalid_argument(std::string("image: ") + format + " of " + size + " could not be decoded: " +
                                stb::failure_reason());
    RgbImage out;
    if (w != h.width || hh != h.height) {
        return internal_error("image: the decoder read " + std::to_string(w) + " x " + std::to_string(hh) +
                              " where the header says " + size);
    }
    out.width = w;
    out.height = hh;
    out.pixels.assign(data.get(), data.get() + static_cast<size_t>(pixels) * 3);
    return out;
}

}  // namespace llmq

// libFuzzer target: decode_image (runtime/src/vision) on arbitrary bytes, with small limits so
// the fuzzer explores headers rather than spending its time on big decodes. Promises: nothing
// is read outside the input, and a decoded image keeps the limits and has exactly
// width * height * 3 bytes; anything refused says why with an "image: " message.
#include <cstdint>
#include <span>

#include "llmq/runtime/image.hpp"

namespace {
void check(bool promise) {
    if (!promise) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    llmq::ImageLimits limits;
    limits.max_dimension = 512;
    limits.max_pixels = 1 << 16;
    auto r = llmq::decode_image(std::span<const uint8_t>(data, size), limits);
    if (r) {
        check(r->width >= 1 && r->height >= 1 && r->width <= 512 && r->height <= 512);
        check(int64_t(r->width) * r->height <= limits.max_pixels);
        check(r->pixels.size() == size_t(r->width) * size_t(r->height) * 3);
    } else {
        check(r.status().message().rfind("image: ", 0) == 0);
    }
    return 0;
}

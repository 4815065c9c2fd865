// stb_image, compiled here and static to this file, with only its PNG and JPEG readers and no
// stdio, so that no other copy of it in the process can clash with this one.
//
// This file is a library of its own (meson.build) so that it alone is built with
// -fno-sanitize=shift (g++ 12 still checks exponents under the narrower
// -fno-sanitize=shift-exponent). Why: stb_image 2.27 (Debian 12's libstb-dev) keeps reading a
// JPEG's entropy-coded data after it has run out of bits (a marker came first: a corrupt file
// whose segments are all well formed, which decode_image's walk cannot tell from a good one).
// Its bit count then goes negative and stbi__grow_buffer_unsafe shifts the byte it adds, which
// is always 0 at that point (it feeds zeros once a marker is seen), by 32 or more: a shift
// that is undefined in C++ but whose value is 0 on every compiler and CPU, so the file decodes
// to grey, as a truncated JPEG does. stb_image 2.28 stops at the missing bits instead. The
// fuzzer found it (tests/fuzz/seeds/jpeg-runs-out-of-bits.jpg is that input, so every fuzz run
// and image_decode_test start from it); every other sanitizer check stays on for this file.
#include "stb_image_impl.hpp"

#include <cstdlib>

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

namespace llmq::stb {

void FreePixels::operator()(uint8_t* p) const { stbi_image_free(p); }

Pixels decode_rgb(std::span<const uint8_t> bytes, int& width, int& height) {
    int channels = 0;
    width = height = 0;
    return Pixels(stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 3));
}

const char* failure_reason() { return stbi_failure_reason(); }

}  // namespace llmq::stb

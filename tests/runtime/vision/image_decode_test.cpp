// decode_image: what it takes (PNG of every colour type and depth, baseline, progressive and
// CMYK JPEG) decodes to the pixels written; everything else is refused with a message naming
// the defect, before any pixel is decoded where the header already says no.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "image_fixtures.hpp"
#include "llmq/runtime/image.hpp"

using namespace llmq;
using namespace llmq::test;

namespace {

std::string error_of(const Bytes& b, ImageLimits limits = {}) {
    auto r = decode_image(b, limits);
    if (r) return "decoded " + std::to_string(r->width) + "x" + std::to_string(r->height);
    return r.status().message();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

uint32_t crc(const uint8_t* p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

void put32(Bytes& b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void chunk(Bytes& out, const char* type, const Bytes& data) {
    put32(out, static_cast<uint32_t>(data.size()));
    Bytes t(type, type + 4);
    t.insert(t.end(), data.begin(), data.end());
    out.insert(out.end(), t.begin(), t.end());
    put32(out, crc(t.data(), t.size()));
}

// A PNG whose IHDR claims w x h (8-bit RGB) with a few bytes of IDAT: valid structure, absurd size.
Bytes png_claiming(uint32_t w, uint32_t h) {
    Bytes out = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    Bytes ihdr;
    put32(ihdr, w);
    put32(ihdr, h);
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
    chunk(out, "IEND", {});
    return out;
}

// Offset of the first SOFn marker of a JPEG.
size_t sof_offset(const Bytes& j) {
    for (size_t i = 2; i + 1 < j.size(); ++i)
        if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) return i;
    return 0;
}

}  // namespace

TEST_CASE("image_decodes_png_of_every_colour_type_exactly") {
    SUBCASE("8-bit RGB") {
        auto png = write_png(5, 3, 8, PNG_COLOR_TYPE_RGB, smooth);
        auto img = decode_image(png, {});
        REQUIRE_MESSAGE(img, img.status().message());
        CHECK(img->width == 5);
        CHECK(img->height == 3);
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 5; ++x)
                for (int c = 0; c < 3; ++c) CHECK(img->at(x, y, c) == smooth(x, y, c));
    }
    SUBCASE("16-bit RGB keeps the high byte") {
        auto png = write_png(4, 4, 16, PNG_COLOR_TYPE_RGB, [](int x, int y, int c) { return (smooth(x, y, c) << 8) | 0x7f; });
        auto img = decode_image(png, {});
        REQUIRE_MESSAGE(img, img.status().message());
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 4; ++x)
                for (int c = 0; c < 3; ++c) CHECK(img->at(x, y, c) == smooth(x, y, c));
    }
    SUBCASE("palette is expanded") {
        std::vector<png_color> pal = {{10, 20, 30}, {200, 100, 50}, {0, 255, 0}};
        auto png = write_png(6, 2, 8, PNG_COLOR_TYPE_PALETTE, [](int x, int, int) { return x % 3; }, pal);
        auto img = decode_image(png, {});
        REQUIRE_MESSAGE(img, img.status().message());
        for (int x = 0; x < 6; ++x) {
            CHECK(img->at(x, 1, 0) == pal[x % 3].red);
            CHECK(img->at(x, 1, 1) == pal[x % 3].green);
            CHECK(img->at(x, 1, 2) == pal[x % 3].blue);
        }
    }
    SUBCASE("grey + alpha becomes grey RGB, alpha dropped") {
        auto png = write_png(3, 3, 8, PNG_COLOR_TYPE_GRAY_ALPHA, [](int x, int y, int c) { return c ? 7 : 30 * x + y; });
        auto img = decode_image(png, {});
        REQUIRE_MESSAGE(img, img.status().message());
        for (int c = 0; c < 3; ++c) CHECK(img->at(2, 1, c) == 61);
    }
}

TEST_CASE("image_decodes_baseline_progressive_and_cmyk_jpeg") {
    const int w = 16, h = 8;
    auto check_close = [&](const Bytes& jpeg, auto expected) {
        auto img = decode_image(jpeg, {});
        REQUIRE_MESSAGE(img, img.status().message());
        REQUIRE(img->width == w);
        REQUIRE(img->height == h);
        int worst = 0;
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(img->at(x, y, c) - expected(x, y, c)));
        // Quality 95 with 4:2:0 chroma: a smooth pattern comes back within a few levels.
        CHECK(worst <= 24);
    };
    check_close(write_jpeg(w, h, smooth), smooth);
    JpegOptions prog;
    prog.progressive = true;
    auto p = write_jpeg(w, h, smooth, prog);
    auto header = read_image_header(p);
    REQUIRE(header);
    CHECK(header->progressive);
    check_close(p, smooth);
    JpegOptions cmyk;
    cmyk.cmyk = true;
    // Adobe CMYK is stored inverted: R = C * K / 255 with K = 255 for "no black".
    auto c = write_jpeg(w, h, [](int x, int y, int ch) { return ch == 3 ? 255 : smooth(x, y, ch); }, cmyk);
    auto ch = read_image_header(c);
    REQUIRE(ch);
    CHECK(ch->components == 4);
    check_close(c, smooth);
}

TEST_CASE("image_refuses_empty_and_foreign_files") {
    CHECK(contains(error_of({}), "empty (0 bytes)"));
    CHECK(contains(error_of({'G', 'I', 'F', '8', '9', 'a', 1, 0}), "not a PNG or JPEG file (it starts with bytes 47 49 46 38"));
    CHECK(contains(error_of({0x89, 'P', 'N'}), "not a PNG or JPEG"));
}

TEST_CASE("image_refuses_every_truncation_of_png_and_jpeg") {
    const Bytes png = write_png(7, 5, 8, PNG_COLOR_TYPE_RGB, smooth);
    const Bytes jpeg = write_jpeg(9, 7, smooth);
    JpegOptions prog;
    prog.progressive = true;
    const Bytes pjpeg = write_jpeg(9, 7, smooth, prog);
    for (const Bytes* file : {&png, &jpeg, &pjpeg}) {
        REQUIRE(decode_image(*file, {}));
        for (size_t n = 1; n < file->size(); ++n) {
            Bytes cut(file->begin(), file->begin() + static_cast<std::ptrdiff_t>(n));
            const std::string e = error_of(cut);
            INFO("prefix of " << n << " of " << file->size() << " bytes: " << e);
            CHECK(e.rfind("image: ", 0) == 0);
        }
    }
    CHECK(contains(error_of(Bytes(png.begin(), png.end() - 6)), "truncated"));
    CHECK(contains(error_of(Bytes(jpeg.begin(), jpeg.end() - 2)), "no EOI marker"));
}

TEST_CASE("image_refuses_corrupt_png_chunks_by_name_and_offset") {
    Bytes png = write_png(4, 4, 8, PNG_COLOR_TYPE_RGB, smooth);
    Bytes bad = png;
    bad[40] ^= 0x55;  // inside IDAT (IHDR ends at byte 33)
    CHECK(contains(error_of(bad), "CRC mismatch"));
    Bytes no_ihdr = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    chunk(no_ihdr, "IEND", {});
    CHECK(contains(error_of(no_ihdr), "first chunk is IEND at byte 8, not IHDR"));
}

TEST_CASE("image_refuses_sizes_over_the_limits_from_the_header") {
    // 30000 x 30000 would be 2.7 GB of pixels; refused from the header.
    const std::string e = error_of(png_claiming(30000, 30000));
    CHECK(contains(e, "30000 x 30000"));
    CHECK(contains(e, "max_image_dimension"));
    Bytes jpeg = write_jpeg(8, 8, smooth);
    const size_t sof = sof_offset(jpeg);
    REQUIRE(sof > 0);
    for (int i : {5, 7}) {  // height and width
        jpeg[sof + i] = 30000 >> 8;
        jpeg[sof + i + 1] = 30000 & 0xff;
    }
    CHECK(contains(error_of(jpeg), "JPEG of 30000 x 30000"));
    // A PNG of a few kilobytes that decodes to 36 megapixels: the pixel cap, not the memory.
    const Bytes bomb = write_png(6000, 6000, 8, PNG_COLOR_TYPE_GRAY, [](int, int, int) { return 0; }, {}, 9);
    CHECK(bomb.size() < 200000);
    const std::string b = error_of(bomb);
    CHECK(contains(b, "6000 x 6000 = 36000000 pixels"));
    CHECK(contains(b, "max_image_pixels"));
    ImageLimits tight;
    tight.max_dimension = 4;
    CHECK(contains(error_of(write_png(5, 3, 8, PNG_COLOR_TYPE_RGB, smooth), tight), "over the limit of 4"));
}

TEST_CASE("image_refuses_jpeg_kinds_it_cannot_decode") {
    JpegOptions arith;
    arith.arithmetic = true;
    auto a = decode_image(write_jpeg(8, 8, smooth, arith), {});
    REQUIRE_FALSE(a);
    CHECK(a.status().code() == status_code::unsupported);
    CHECK(contains(a.status().message(), "arithmetic coding"));
    Bytes twelve = write_jpeg(8, 8, smooth);
    twelve[sof_offset(twelve) + 4] = 12;  // sample precision
    CHECK(contains(error_of(twelve), "12-bit samples"));
}

// The libFuzzer target's find: a JPEG whose segments are all well formed but whose entropy-coded
// data runs out before the last block. stb_image 2.27 then decodes the rest from zero bits (the
// image comes out grey there, as any truncated JPEG) and shifts a zero byte by 32 or more on the
// way, which UBSan calls undefined: stb_image_impl.cpp is built without that one check, so this
// test, run under the sanitizers (run_sanitizers.sh), fails if that build flag is lost.
TEST_CASE("image_decodes_a_jpeg_whose_entropy_data_runs_out_of_bits") {
    const char* root = std::getenv("LLMQ_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    std::ifstream f(std::string(root) + "/tests/fuzz/seeds/jpeg-runs-out-of-bits.jpg", std::ios::binary);
    REQUIRE(f.good());
    Bytes b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    REQUIRE(b.size() == 2618);
    auto r = decode_image(b, {});
    REQUIRE(r);
    CHECK(r->width == 12);
    CHECK(r->height == 299);
    CHECK(r->pixels.size() == size_t(12) * 299 * 3);
}

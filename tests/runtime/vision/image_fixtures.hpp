// Test images written in memory with libpng and libjpeg: the kinds the decoder must take
// (16-bit, palette, grey + alpha, progressive, CMYK) and must refuse (arithmetic coding), so
// no binary fixture lives in the tree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>  // before jpeglib.h, which needs FILE and size_t
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

#include <jpeglib.h>
#include <png.h>

namespace llmq::test {

using Bytes = std::vector<uint8_t>;

// value(x, y, channel) gives each sample (0..255, or 0..65535 for 16-bit).
inline Bytes write_png(int w, int h, int bit_depth, int color_type,
                       const std::function<int(int, int, int)>& value,
                       const std::vector<png_color>& palette = {}, int compression = 6) {
    Bytes out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) throw std::runtime_error("libpng failed");
    png_set_write_fn(
        png, &out,
        [](png_structp p, png_bytep data, png_size_t n) {
            auto* o = static_cast<Bytes*>(png_get_io_ptr(p));
            o->insert(o->end(), data, data + n);
        },
        nullptr);
    png_set_compression_level(png, compression);
    png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    png_write_info(png, info);
    const int channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGBA ? 4
                         : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                                 ? 2
                                                                                                   : 1;
    const int bytes_per_sample = bit_depth == 16 ? 2 : 1;
    std::vector<uint8_t> row(static_cast<size_t>(w) * channels * bytes_per_sample);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < channels; ++c) {
                const int v = value(x, y, c);
                uint8_t* p = &row[(static_cast<size_t>(x) * channels + c) * bytes_per_sample];
                if (bytes_per_sample == 2) {
                    p[0] = static_cast<uint8_t>(v >> 8);
                    p[1] = static_cast<uint8_t>(v);
                } else {
                    p[0] = static_cast<uint8_t>(v);
                }
            }
        png_write_row(png, row.data());
    }
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return out;
}

struct JpegOptions {
    bool progressive = false;
    bool cmyk = false;        // four components, Adobe-style inverted CMYK
    bool arithmetic = false;  // arithmetic coding (refused by the decoder)
    int quality = 95;
};

inline Bytes write_jpeg(int w, int h, const std::function<int(int, int, int)>& value, JpegOptions o = {}) {
    jpeg_compress_struct cinfo;
    jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char* mem = nullptr;
    unsigned long mem_size = 0;
    jpeg_mem_dest(&cinfo, &mem, &mem_size);
    cinfo.image_width = static_cast<JDIMENSION>(w);
    cinfo.image_height = static_cast<JDIMENSION>(h);
    cinfo.input_components = o.cmyk ? 4 : 3;
    cinfo.in_color_space = o.cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, o.quality, TRUE);
    if (o.progressive) jpeg_simple_progression(&cinfo);
    if (o.arithmetic) cinfo.arith_code = TRUE;
    jpeg_start_compress(&cinfo, TRUE);
    std::vector<uint8_t> row(static_cast<size_t>(w) * cinfo.input_components);
    while (cinfo.next_scanline < cinfo.image_height) {
        const int y = static_cast<int>(cinfo.next_scanline);
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < cinfo.input_components; ++c)
                row[static_cast<size_t>(x) * cinfo.input_components + c] = static_cast<uint8_t>(value(x, y, c));
        JSAMPROW rows[1] = {row.data()};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    Bytes out(mem, mem + mem_size);
    jpeg_destroy_compress(&cinfo);
    std::free(mem);
    return out;
}

// A smooth RGB test pattern that survives JPEG well.
inline int smooth(int x, int y, int c) { return 30 + 6 * x + 5 * y + 40 * c; }  // under 256 for x < 16, y < 8

}  // namespace llmq::test

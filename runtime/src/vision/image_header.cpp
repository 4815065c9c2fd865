// The structure walk of read_image_header (image.hpp): every length is compared with the bytes
// that remain, never with another declared field, and every offset in a message is where the
// defect starts.
#include <array>
#include <cstdio>

#include "llmq/runtime/image.hpp"

namespace llmq {

const char* image_format_name(ImageFormat f) { return f == ImageFormat::png ? "PNG" : "JPEG"; }

namespace {

constexpr std::array<uint8_t, 8> png_signature = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

uint32_t be32(const uint8_t* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
uint32_t be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }

// CRC-32 of PNG (ISO 3309, polynomial 0xEDB88320, reflected).
uint32_t crc32(const uint8_t* p, size_t n) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

std::string at(size_t offset) { return " at byte " + std::to_string(offset); }

std::string chunk_name(const uint8_t* p) {
    std::string s;
    for (int i = 0; i < 4; ++i) {
        const char c = static_cast<char>(p[i]);
        s += (c >= 0x21 && c <= 0x7e) ? c : '?';
    }
    return s;
}

Status png_error(const std::string& what) { return invalid_argument("image: PNG " + what); }

Expected<ImageHeader> read_png(std::span<const uint8_t> b) {
    ImageHeader h;
    h.format = ImageFormat::png;
    size_t pos = png_signature.size();
    bool seen_ihdr = false, seen_plte = false, seen_idat = false;
    int color_type = 0;
    while (true) {
        if (b.size() - pos < 8)
            return png_error("truncated" + at(pos) + ": the file ends before the IEND chunk (" +
                             std::to_string(b.size() - pos) + " bytes left, a chunk header needs 8)");
        const uint64_t length = be32(&b[pos]);
        const std::string name = chunk_name(&b[pos + 4]);
        if (length > 0x7fffffffu)
            return png_error("chunk " + name + at(pos) + ": length " + std::to_string(length) +
                             " is over the format's 2^31 - 1");
        if (b.size() - pos - 8 < length + 4)
            return png_error("truncated" + at(pos) + ": chunk " + name + " needs " +
                             std::to_string(length + 4) + " bytes of data and CRC, " +
                             std::to_string(b.size() - pos - 8) + " remain");
        const uint8_t* data = &b[pos + 8];
        if (crc32(&b[pos + 4], static_cast<size_t>(length) + 4) != be32(data + length))
            return png_error("chunk " + name + at(pos) + ": CRC mismatch (the file is corrupt)");
        if (!seen_ihdr && name != "IHDR")
            return png_error("first chunk is " + name + at(pos) + ", not IHDR");
        if (name == "IHDR") {
            if (seen_ihdr) return png_error("second IHDR chunk" + at(pos));
            if (length != 13) return png_error("IHDR" + at(pos) + " has length " + std::to_string(length) + ", not 13");
            seen_ihdr = true;
            const uint32_t w = be32(data), hh = be32(data + 4);
            if (w == 0 || hh == 0 || w > 0x7fffffffu || hh > 0x7fffffffu)
                return png_error("IHDR: " + std::to_string(w) + " x " + std::to_string(hh) +
                                 " is not a valid size");
            h.width = static_cast<int32_t>(w);
            h.height = static_cast<int32_t>(hh);
            h.bit_depth = data[8];
            color_type = data[9];
            const int d = h.bit_depth;
            const bool ok = (color_type == 0 && (d == 1 || d == 2 || d == 4 || d == 8 || d == 16)) ||
                            (color_type == 3 && (d == 1 || d == 2 || d == 4 || d == 8)) ||
                            ((color_type == 2 || color_type == 4 || color_type == 6) && (d == 8 || d == 16));
            if (!ok)
                return png_error("IHDR: colour type " + std::to_string(color_type) + " with bit depth " +
                                 std::to_string(d) + " is not a valid PNG combination");
            if (data[10] != 0 || data[11] != 0 || data[12] > 1)
                return png_error("IHDR: compression " + std::to_string(data[10]) + ", filter " +
                                 std::to_string(data[11]) + ", interlace " + std::to_string(data[12]) +
                                 ": only 0, 0 and 0 or 1 exist");
            h.components = (color_type == 0 || color_type == 4) ? 1 : 3;
        } else if (name == "PLTE") {
            seen_plte = true;
        } else if (name == "IDAT") {
            if (color_type == 3 && !seen_plte) return png_error("palette image has no PLTE before IDAT" + at(pos));
            seen_idat = true;
        } else if (name == "IEND") {
            if (!seen_idat) return png_error("IEND" + at(pos) + " before any IDAT (no pixel data)");
            return h;
        } else if (!(b[pos + 4] & 0x20)) {
            return png_error("unknown critical chunk " + name + at(pos));
        }
        pos += 8 + static_cast<size_t>(length) + 4;
    }
}

Status jpeg_error(const std::string& what) { return invalid_argument("image: JPEG " + what); }

std::string hex(uint32_t v) {
    char s[8];
    std::snprintf(s, sizeof s, "%02X", v);
    return s;
}

Expected<ImageHeader> read_jpeg(std::span<const uint8_t> b) {
    ImageHeader h;
    h.format = ImageFormat::jpeg;
    size_t pos = 2;
    bool seen_frame = false;
    unsigned defined_tables = 0;  // bit (class * 4 + id) per Huffman table defined so far
    while (true) {
        if (pos >= b.size()) return jpeg_error("truncated" + at(pos) + ": the file ends before the EOI marker");
        if (b[pos] != 0xFF)
            return jpeg_error("byte " + hex(b[pos]) + at(pos) + " where a marker (FF xx) must start");
        while (pos < b.size() && b[pos] == 0xFF) ++pos;  // fill bytes
        if (pos >= b.size()) return jpeg_error("truncated" + at(pos) + ": the file ends inside a marker");
        const uint32_t m = b[pos];
        const size_t marker_at = pos - 1;
        ++pos;
        if (m == 0xD9) {
            if (!seen_frame) return jpeg_error("EOI" + at(marker_at) + " before any frame (SOF)");
            return h;
        }
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;  // standalone markers
        if (m == 0xD8) return jpeg_error("second SOI marker" + at(marker_at));
        if (m == 0x00) return jpeg_error("byte 00 after FF" + at(marker_at) + " outside entropy-coded data");
        if (b.size() - pos < 2)
            return jpeg_error("truncated" + at(marker_at) + ": marker FF" + hex(m) + " has no length");
        const size_t length = be16(&b[pos]);
        if (length < 2) return jpeg_error("marker FF" + hex(m) + at(marker_at) + " has length " + std::to_string(length));
        if (b.size() - pos < length)
            return jpeg_error("truncated" + at(marker_at) + ": segment FF" + hex(m) + " needs " +
                              std::to_string(length) + " bytes, " + std::to_string(b.size() - pos) + " remain");
        const uint8_t* seg = &b[pos + 2];
        const size_t seg_len = length - 2;
        const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof) {
            if (seen_frame) return jpeg_error("second frame header" + at(marker_at));
            if (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF)
                return unsupported("image: JPEG" + at(marker_at) + " is lossless (SOF" + hex(m) +
                                   "), which this decoder does not take; re-encode it as baseline JPEG or PNG");
            if (m >= 0xC9)
                return unsupported("image: JPEG" + at(marker_at) + " uses arithmetic coding (SOF" + hex(m) +
                                   "), which this decoder does not take; re-encode it with Huffman coding");
            if (m == 0xC5 || m == 0xC6)
                return unsupported("image: JPEG" + at(marker_at) + " is hierarchical (SOF" + hex(m) +
                                   "), which this decoder does not take");
            if (seg_len < 6) return jpeg_error("frame header" + at(marker_at) + " is " + std::to_string(seg_len) + " bytes");
            if (seg[0] != 8)
                return unsupported("image: JPEG has " + std::to_string(seg[0]) +
                                   "-bit samples; this decoder takes 8-bit JPEG only");
            h.height = static_cast<int32_t>(be16(seg + 1));
            h.width = static_cast<int32_t>(be16(seg + 3));
            h.components = seg[5];
            h.progressive = m == 0xC2;
            if (h.width == 0 || h.height == 0)
                return unsupported("image: JPEG frame header says " + std::to_string(h.width) + " x " +
                                   std::to_string(h.height) + " (a height given later by DNL is not supported)");
            if (h.components != 1 && h.components != 3 && h.components != 4)
                return unsupported("image: JPEG with " + std::to_string(h.components) +
                                   " components; 1 (grey), 3 (YCbCr/RGB) or 4 (CMYK/YCCK) are taken");
            if (seg_len < 6 + 3 * static_cast<size_t>(h.components))
                return jpeg_error("frame header" + at(marker_at) + " is shorter than its component list");
            seen_frame = true;
        }
        if (m == 0xC4) {
            // Huffman tables. stb_image 2.27 (Debian 12's) writes past its 257-entry size list
            // when a table's 16 counts add up to more than 256 (the fuzz target found it), so
            // every table is checked here: class 0/1, id 0..3, at most 256 codes, all present.
            size_t t = 0;
            while (t < seg_len) {
                if (seg_len - t < 17)
                    return jpeg_error("Huffman table (DHT)" + at(marker_at) + " is cut short");
                if ((seg[t] >> 4) > 1 || (seg[t] & 15) > 3)
                    return jpeg_error("Huffman table (DHT)" + at(marker_at) + " has class/id byte " + hex(seg[t]));
                size_t codes = 0;
                for (int i = 1; i <= 16; ++i) codes += seg[t + i];
                if (codes > 256)
                    return jpeg_error("Huffman table (DHT)" + at(marker_at) + " declares " + std::to_string(codes) +
                                      " codes, more than 256");
                if (seg_len - t - 17 < codes)
                    return jpeg_error("Huffman table (DHT)" + at(marker_at) + " lists fewer symbols than its counts");
                defined_tables |= 1u << ((seg[t] >> 4) * 4 + (seg[t] & 15));
                t += 17 + codes;
            }
        }
        if (m == 0xDA && seen_frame) {
            // A scan may only use Huffman tables defined before it: stb_image reads an undefined
            // one from uninitialised memory (another crash the fuzz target found).
            const size_t ns = seg_len ? seg[0] : 0;
            if (ns < 1 || ns > 4 || seg_len < 1 + 2 * ns + 3)
                return jpeg_error("scan header (SOS)" + at(marker_at) + " is malformed");
            const uint8_t ss = seg[1 + 2 * ns], ah = seg[3 + 2 * ns] >> 4;
            for (size_t c = 0; c < ns; ++c) {
                const unsigned td = seg[2 + 2 * c] >> 4, ta = seg[2 + 2 * c] & 15;
                const bool needs_dc = !h.progressive || (ss == 0 && ah == 0);
                const bool needs_ac = !h.progressive || ss > 0;
                if (td > 3 || ta > 3 || (needs_dc && !(defined_tables & (1u << td))) ||
                    (needs_ac && !(defined_tables & (1u << (4 + ta)))))
                    return jpeg_error("scan" + at(marker_at) + " uses a Huffman table that was not defined before it");
            }
        }
        pos += length;
        if (m == 0xDA) {
            if (!seen_frame) return jpeg_error("scan (SOS)" + at(marker_at) + " before the frame header");
            // Entropy-coded data runs to the next marker that is not a stuffed 00 or a restart.
            while (true) {
                while (pos < b.size() && b[pos] != 0xFF) ++pos;
                if (b.size() - pos < 2)
                    return jpeg_error("truncated" + at(b.size()) + ": the file ends inside the scan that starts" +
                                      at(marker_at) + " (no EOI marker)");
                const uint8_t next = b[pos + 1];
                if (next == 0x00 || (next >= 0xD0 && next <= 0xD7) || next == 0xFF) {
                    pos += (next == 0xFF) ? 1 : 2;
                    continue;
                }
                break;
            }
        }
    }
}

}  // namespace

Expected<ImageHeader> read_image_header(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return invalid_argument("image: empty (0 bytes)");
    if (bytes.size() >= png_signature.size() &&
        std::equal(png_signature.begin(), png_signature.end(), bytes.begin()))
        return read_png(bytes);
    if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return read_jpeg(bytes);
    std::string first;
    for (size_t i = 0; i < bytes.size() && i < 4; ++i) first += (i ? " " : "") + hex(bytes[i]);
    return invalid_argument("image: not a PNG or JPEG file (it starts with bytes " + first +
                            "; PNG starts 89 50 4E 47, JPEG FF D8 FF)");
}

}  // namespace llmq

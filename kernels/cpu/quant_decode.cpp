// Scalar decoding of every block type (layouts in llmq/kernels/quant_blocks.hpp) into the
// uniform chunk of quant_chunk.hpp, and the exact dequantization built on it.
#include <cstring>

#include "llmq/kernels/quant_blocks.hpp"
#include "quant_chunk.hpp"
#include "reference/float16_conversion.hpp"

namespace llmq::kernels {

const int8_t iq4_codebook[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                 1,    13,   25,  38,  53,  69,  89,  113};

namespace detail {
namespace {

using scalar_float16::half_to_float;

float half_at(const uint8_t* p) { return half_to_float(uint16_t(p[0] | (p[1] << 8))); }

void uniform_groups(quant_chunk& c, int first_group, int groups) {
    for (int g = first_group; g < first_group + groups; ++g) c.scale[g] = 1;
}

// q4_0, q4_1, iq4_nl: 32 values from 16 bytes of nibbles.
void nibbles_32(const uint8_t* qs, int8_t* q, int offset, const int8_t* codebook) {
    for (int j = 0; j < 16; ++j) {
        const int lo = qs[j] & 15, hi = qs[j] >> 4;
        q[j] = codebook != nullptr ? codebook[lo] : int8_t(lo - offset);
        q[j + 16] = codebook != nullptr ? codebook[hi] : int8_t(hi - offset);
    }
}

// q5_0, q5_1: 32 values from 4 bytes of high bits and 16 bytes of nibbles.
void fives_32(const uint8_t* qh_bytes, const uint8_t* qs, int8_t* q, int offset) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);  // little-endian host (x86-64)
    for (int j = 0; j < 16; ++j) {
        const int lo = (qs[j] & 15) | int((qh >> j) & 1) << 4;
        const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
        q[j] = int8_t(lo - offset);
        q[j + 16] = int8_t(hi - offset);
    }
}

void legacy_blocks(dtype t, const uint8_t* b, int blocks, quant_chunk& c) {
    const int bytes = block_bytes(t);
    c.has_min = t == dtype::q4_1 || t == dtype::q5_1;
    for (int i = 0; i < blocks; ++i, b += bytes) {
        int8_t* q = c.q + 32 * i;
        c.d[i] = half_at(b);
        uniform_groups(c, 2 * i, 2);
        switch (t) {
            case dtype::q4_0: nibbles_32(b + 2, q, 8, nullptr); break;
            case dtype::iq4_nl: nibbles_32(b + 2, q, 0, iq4_codebook); break;
            case dtype::q4_1: nibbles_32(b + 4, q, 0, nullptr); break;
            case dtype::q5_0: fives_32(b + 2, b + 6, q, 16); break;
            case dtype::q5_1: fives_32(b + 4, b + 8, q, 0); break;
            default: break;
        }
        if (c.has_min) c.min[2 * i] = c.min[2 * i + 1] = -half_at(b + 2);  // v = d q + m
    }
}

void q4_k_or_q5_k(const uint8_t* b, bool five, quant_chunk& c) {
    const float d = half_at(b), dmin = half_at(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = five ? b + 48 : b + 16;
    c.has_min = true;
    for (int g = 0; g < 8; ++g) {
        int scale, min;
        scale_min_k4(scales, g, scale, min);
        c.d[g] = d;
        c.scale[2 * g] = c.scale[2 * g + 1] = int16_t(scale);
        c.min[2 * g] = c.min[2 * g + 1] = dmin * float(min);
        const uint8_t* bytes = qs + 32 * (g / 2);
        for (int l = 0; l < 32; ++l) {
            int v = g % 2 == 0 ? bytes[l] & 15 : bytes[l] >> 4;
            if (five) v |= ((qh[l] >> g) & 1) << 4;
            c.q[32 * g + l] = int8_t(v);
        }
    }
}

void q6_k(const uint8_t* b, quant_chunk& c) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_at(b + 208);
    c.has_min = false;
    for (int i = 0; i < 8; ++i) c.d[i] = d;
    for (int g = 0; g < 16; ++g) c.scale[g] = scales[g];
    for (int h = 0; h < 2; ++h)
        for (int r = 0; r < 4; ++r)
            for (int l = 0; l < 32; ++l) {
                const uint8_t low = ql[64 * h + l + 32 * (r & 1)];
                const int lo = r < 2 ? low & 15 : low >> 4;
                const int hi = (qh[32 * h + l] >> (2 * r)) & 3;
                c.q[128 * h + 32 * r + l] = int8_t((lo | hi << 4) - 32);
            }
}

// q2_k and q3_k share the placement of their 2-bit values.
int two_bits(const uint8_t* qs, int e) {
    const int h = e / 128, s = (e / 32) % 4, rest = e % 32;
    return (qs[32 * h + rest] >> (2 * s)) & 3;
}

void q2_k(const uint8_t* b, quant_chunk& c) {
    const uint8_t* scales = b;
    const uint8_t* qs = b + 16;
    const float d = half_at(b + 80), dmin = half_at(b + 82);
    c.has_min = true;
    for (int i = 0; i < 8; ++i) c.d[i] = d;
    for (int g = 0; g < 16; ++g) {
        c.scale[g] = int16_t(scales[g] & 15);
        c.min[g] = dmin * float(scales[g] >> 4);
    }
    for (int e = 0; e < 256; ++e) c.q[e] = int8_t(two_bits(qs, e));
}

void q3_k(const uint8_t* b, quant_chunk& c) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* s = b + 96;
    const float d = half_at(b + 108);
    c.has_min = false;
    for (int i = 0; i < 8; ++i) c.d[i] = d;
    for (int g = 0; g < 16; ++g) {
        const int low = g < 8 ? s[g] & 15 : s[g - 8] >> 4;
        const int high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
        c.scale[g] = int16_t((low | high << 4) - 32);
    }
    for (int e = 0; e < 256; ++e) {
        const bool high = (hmask[e % 32] >> (e / 32)) & 1;
        c.q[e] = int8_t(two_bits(qs, e) - (high ? 0 : 4));
    }
}

void iq4_xs(const uint8_t* b, quant_chunk& c) {
    const float d = half_at(b);
    const int scales_h = b[2] | b[3] << 8;
    const uint8_t* scales_l = b + 4;
    const uint8_t* qs = b + 8;
    c.has_min = false;
    for (int g = 0; g < 8; ++g) {
        const int ls = ((scales_l[g / 2] >> (4 * (g % 2))) & 15) | ((scales_h >> (2 * g)) & 3) << 4;
        c.d[g] = d;
        c.scale[2 * g] = c.scale[2 * g + 1] = int16_t(ls - 32);
        nibbles_32(qs + 16 * g, c.q + 32 * g, 0, iq4_codebook);
    }
}

}  // namespace

int chunk_bytes_of(dtype t) { return chunk_values / block_values(t) * block_bytes(t); }


void unpack_chunk(dtype t, const uint8_t* blocks, int values, quant_chunk& out) {
    switch (t) {
        case dtype::q4_k: return q4_k_or_q5_k(blocks, false, out);
        case dtype::q5_k: return q4_k_or_q5_k(blocks, true, out);
        case dtype::q6_k: return q6_k(blocks, out);
        case dtype::q2_k: return q2_k(blocks, out);
        case dtype::q3_k: return q3_k(blocks, out);
        case dtype::iq4_xs: return iq4_xs(blocks, out);
        default: return legacy_blocks(t, blocks, values / 32, out);
    }
}

void chunk_to_f32(const quant_chunk& c, int values, float* dst) {
    for (int g = 0; g < values / 16; ++g) {
        const float factor = c.d[g / 2] * float(c.scale[g]);
        for (int l = 0; l < 16; ++l) {
            const float v = factor * float(c.q[16 * g + l]);
            dst[16 * g + l] = c.has_min ? v - c.min[g] : v;
        }
    }
}

}  // namespace detail

void dequantize_blocks(dtype t, const void* src, float* dst, int64_t n) {
    if (!is_block_quantized(t)) return;
    const auto* bytes = static_cast<const uint8_t*>(src);
    detail::quant_chunk chunk;
    const int64_t per_block = block_values(t);
    for (int64_t i = 0; i + per_block <= n;) {
        const int values = int(n - i >= detail::chunk_values ? detail::chunk_values : (n - i) / per_block * per_block);
        detail::unpack_chunk(t, bytes, values, chunk);
        detail::chunk_to_f32(chunk, values, dst + i);
        bytes += values / per_block * block_bytes(t);
        i += values;
    }
}

}  // namespace llmq::kernels

// The quantizer of every block type: a search for the scale (and min) of each block or group
// that minimises the squared error of the dequantized values, then the k-quants' second level
// (the group scales rounded to their 4, 6 or 8 bits under a super-block scale), and finally the
// q values recomputed with the scales exactly as they are stored (fp16 rounding included), so
// what is written is the best fit of what will be read.
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "llmq/kernels/quant_blocks.hpp"
#include "reference/float16_conversion.hpp"

namespace llmq::kernels {
namespace {

using scalar_float16::float_to_half;
using scalar_float16::half_to_float;

float stored_half(float v) { return half_to_float(float_to_half(v)); }
void put_half(uint8_t* p, float v) {
    const uint16_t h = float_to_half(v);
    p[0] = uint8_t(h & 0xff);
    p[1] = uint8_t(h >> 8);
}

// round(v) clamped to [lo, hi]; NaN goes to lo.
int nearest_clamped(float v, int lo, int hi) {
    if (!(v >= float(lo))) return lo;
    if (v >= float(hi)) return hi;
    return int(std::nearbyint(v));
}

// The index of the codebook value nearest to v.
int codebook_index(float v) {
    int best = 0;
    float best_distance = std::fabs(v - float(iq4_codebook[0]));
    for (int i = 1; i < 16; ++i) {
        const float distance = std::fabs(v - float(iq4_codebook[i]));
        if (distance < best_distance) {
            best = i;
            best_distance = distance;
        }
    }
    return best;
}

// The values q may take: an integer range or the iq4 codebook.
struct value_grid {
    int lo, hi;
    bool codebook;
};
const value_grid iq4_grid{-127, 113, true};

// The grid value nearest to v (as a value, not an index).
int grid_value(float v, const value_grid& g) {
    return g.codebook ? iq4_codebook[codebook_index(v)] : nearest_clamped(v, g.lo, g.hi);
}

// Best d for x ≈ d * q, q on the grid: for each end of the grid that the value of largest
// magnitude could map to, and a few stretches of it, round to the grid, refit d by least
// squares, and keep the smallest squared error.
float fit_scale(const float* x, int n, const value_grid& g) {
    float extreme = 0.0f;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    if (extreme == 0.0f || !std::isfinite(extreme)) return 0.0f;
    double best_error = 0.0;
    for (int i = 0; i < n; ++i) best_error += double(x[i]) * x[i];
    float best = 0.0f;
    for (int end : {g.lo, g.hi}) {
        if (end == 0) continue;
        for (int step = 0; step <= 8; ++step) {
            const float d0 = extreme / (float(end) * (0.8f + 0.05f * float(step)));
            double xq = 0.0, qq = 0.0;
            for (int i = 0; i < n; ++i) {
                const int q = grid_value(x[i] / d0, g);
                xq += double(x[i]) * q;
                qq += double(q) * q;
            }
            if (qq == 0.0) continue;
            const float d = float(xq / qq);
            double error = 0.0;
            for (int i = 0; i < n; ++i) {
                const double r = double(x[i]) - double(d) * grid_value(x[i] / d, g);
                error += r * r;
            }
            if (error < best_error) {
                best_error = error;
                best = d;
            }
        }
    }
    return best;
}

// Best (d, lo) for x ≈ d * q + lo, q in [0, qmax], d >= 0 (and lo <= 0 when lo_at_most_zero,
// as the k-quants store the min as an unsigned amount subtracted).
struct scale_and_offset {
    float d, lo;
};
scale_and_offset fit_scale_offset(const float* x, int n, int qmax, bool lo_at_most_zero) {
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; ++i) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (lo_at_most_zero && mn > 0.0f) mn = 0.0f;
    if (!(mx > mn) || !std::isfinite(mx - mn)) return {0.0f, std::isfinite(mn) ? mn : 0.0f};
    scale_and_offset best{(mx - mn) / float(qmax), mn};
    double best_error = -1.0;
    for (int step = 0; step <= 8; ++step) {
        const float d0 = (mx - mn) / (float(qmax) * (0.84f + 0.04f * float(step)));
        double s1 = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
        for (int i = 0; i < n; ++i) {
            const int q = nearest_clamped((x[i] - mn) / d0, 0, qmax);
            s1 += 1;
            sq += q;
            sqq += double(q) * q;
            sx += x[i];
            sxq += double(x[i]) * q;
        }
        const double det = s1 * sqq - sq * sq;
        if (det <= 0.0) continue;
        double d = (s1 * sxq - sq * sx) / det;
        double lo = (sqq * sx - sq * sxq) / det;
        if (lo_at_most_zero && lo > 0.0) {
            lo = 0.0;
            d = sxq / sqq;
        }
        if (d <= 0.0) continue;
        double error = 0.0;
        for (int i = 0; i < n; ++i) {
            const int q = nearest_clamped(float((x[i] - lo) / d), 0, qmax);
            const double r = x[i] - (d * q + lo);
            error += r * r;
        }
        if (best_error < 0.0 || error < best_error) {
            best_error = error;
            best = {float(d), float(lo)};
        }
    }
    return best;
}

// Inverse of a stored scale: 0 stays 0 (its values are then all q = the neutral value).
float inverse(float d) { return d != 0.0f && std::isfinite(d) ? 1.0f / d : 0.0f; }

// ---- the 32-value types

void put_nibbles(uint8_t* qs, const int* q) {
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t(q[j] | q[j + 16] << 4);
}
void put_fives(uint8_t* qh_bytes, uint8_t* qs, const int* q) {
    uint32_t qh = 0;
    for (int j = 0; j < 32; ++j) qh |= uint32_t(q[j] >> 4 & 1) << j;
    std::memcpy(qh_bytes, &qh, 4);
    int low[32];
    for (int j = 0; j < 32; ++j) low[j] = q[j] & 15;
    put_nibbles(qs, low);
}

void quantize_legacy_block(dtype t, const float* x, uint8_t* b) {
    int q[32];
    if (t == dtype::q4_1 || t == dtype::q5_1) {
        const int qmax = t == dtype::q4_1 ? 15 : 31;
        const scale_and_offset fit = fit_scale_offset(x, 32, qmax, false);
        const float d = stored_half(fit.d), m = stored_half(fit.lo);
        put_half(b, d);
        put_half(b + 2, m);
        const float id = inverse(d);
        for (int j = 0; j < 32; ++j) q[j] = nearest_clamped((x[j] - m) * id, 0, qmax);
        if (t == dtype::q4_1) put_nibbles(b + 4, q);
        else put_fives(b + 4, b + 8, q);
        return;
    }
    const value_grid grid = t == dtype::iq4_nl ? iq4_grid : t == dtype::q4_0 ? value_grid{-8, 7, false}
                                                                              : value_grid{-16, 15, false};
    const float d = stored_half(fit_scale(x, 32, grid));
    put_half(b, d);
    const float id = inverse(d);
    for (int j = 0; j < 32; ++j) {
        if (t == dtype::iq4_nl) q[j] = id != 0.0f ? codebook_index(x[j] * id) : 8;
        else q[j] = nearest_clamped(x[j] * id, grid.lo, grid.hi) - grid.lo;
    }
    if (t == dtype::q5_0) put_fives(b + 2, b + 6, q);
    else put_nibbles(b + 2, q);
}

// ---- the k-quants

float max_of(const float* v, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; ++i) m = v[i] > m ? v[i] : m;
    return m;
}
float max_abs_of(const float* v, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; ++i) m = std::fabs(v[i]) > m ? std::fabs(v[i]) : m;
    return m;
}

// q4_k and q5_k: 8 groups of 32, 6-bit scales and mins.
void quantize_q4_k_or_q5_k(const float* x, uint8_t* b, bool five) {
    const int qmax = five ? 31 : 15;
    float scales[8], mins[8];
    for (int g = 0; g < 8; ++g) {
        const scale_and_offset fit = fit_scale_offset(x + 32 * g, 32, qmax, true);
        scales[g] = fit.d;
        mins[g] = -fit.lo;
    }
    const float d = stored_half(max_of(scales, 8) / 63.0f), dmin = stored_half(max_of(mins, 8) / 63.0f);
    put_half(b, d);
    put_half(b + 2, dmin);
    int sc[8], mq[8];
    for (int g = 0; g < 8; ++g) {
        sc[g] = nearest_clamped(scales[g] * inverse(d), 0, 63);
        mq[g] = nearest_clamped(mins[g] * inverse(dmin), 0, 63);
    }
    uint8_t* packed = b + 4;
    for (int g = 0; g < 4; ++g) {
        packed[g] = uint8_t(sc[g] | (sc[g + 4] >> 4) << 6);
        packed[g + 4] = uint8_t(mq[g] | (mq[g + 4] >> 4) << 6);
        packed[g + 8] = uint8_t((sc[g + 4] & 15) | (mq[g + 4] & 15) << 4);
    }
    uint8_t* qh = b + 16;
    uint8_t* qs = five ? b + 48 : b + 16;
    if (five) std::memset(qh, 0, 32);
    std::memset(qs, 0, 128);
    for (int g = 0; g < 8; ++g) {
        const float scale = d * float(sc[g]), min = dmin * float(mq[g]);
        const float id = inverse(scale);
        for (int l = 0; l < 32; ++l) {
            const int q = nearest_clamped((x[32 * g + l] + min) * id, 0, qmax);
            qs[32 * (g / 2) + l] |= uint8_t((q & 15) << (4 * (g % 2)));
            if (five) qh[l] |= uint8_t((q >> 4) << g);
        }
    }
}

void quantize_q6_k(const float* x, uint8_t* b) {
    float scales[16];
    const value_grid grid{-32, 31, false};
    for (int g = 0; g < 16; ++g) scales[g] = fit_scale(x + 16 * g, 16, grid);
    const float d = stored_half(max_abs_of(scales, 16) / 127.0f);
    put_half(b + 208, d);
    uint8_t* ql = b;
    uint8_t* qh = b + 128;
    auto* sc = reinterpret_cast<int8_t*>(b + 192);
    std::memset(b, 0, 192);
    for (int g = 0; g < 16; ++g) sc[g] = int8_t(nearest_clamped(scales[g] * inverse(d), -128, 127));
    for (int e = 0; e < 256; ++e) {
        const int h = e / 128, r = (e / 32) % 4, l = e % 32;
        const float id = inverse(d * float(sc[e / 16]));
        const int q = nearest_clamped(x[e] * id, -32, 31) + 32;
        ql[64 * h + l + 32 * (r & 1)] |= uint8_t((q & 15) << (r < 2 ? 0 : 4));
        qh[32 * h + l] |= uint8_t((q >> 4) << (2 * r));
    }
}

// The 2-bit placement shared by q2_k and q3_k.
void put_two_bits(uint8_t* qs, int e, int v) {
    const int h = e / 128, s = (e / 32) % 4, rest = e % 32;
    qs[32 * h + rest] |= uint8_t(v << (2 * s));
}

void quantize_q2_k(const float* x, uint8_t* b) {
    float scales[16], mins[16];
    for (int g = 0; g < 16; ++g) {
        const scale_and_offset fit = fit_scale_offset(x + 16 * g, 16, 3, true);
        scales[g] = fit.d;
        mins[g] = -fit.lo;
    }
    const float d = stored_half(max_of(scales, 16) / 15.0f), dmin = stored_half(max_of(mins, 16) / 15.0f);
    put_half(b + 80, d);
    put_half(b + 82, dmin);
    std::memset(b + 16, 0, 64);
    for (int g = 0; g < 16; ++g) {
        const int sc = nearest_clamped(scales[g] * inverse(d), 0, 15);
        const int mq = nearest_clamped(mins[g] * inverse(dmin), 0, 15);
        b[g] = uint8_t(sc | mq << 4);
        const float id = inverse(d * float(sc)), min = dmin * float(mq);
        for (int l = 0; l < 16; ++l) put_two_bits(b + 16, 16 * g + l, nearest_clamped((x[16 * g + l] + min) * id, 0, 3));
    }
}

void quantize_q3_k(const float* x, uint8_t* b) {
    float scales[16];
    const value_grid grid{-4, 3, false};
    for (int g = 0; g < 16; ++g) scales[g] = fit_scale(x + 16 * g, 16, grid);
    const float d = stored_half(max_abs_of(scales, 16) / 31.0f);
    put_half(b + 108, d);
    std::memset(b, 0, 108);
    uint8_t* hmask = b;
    uint8_t* qs = b + 32;
    uint8_t* packed = b + 96;
    for (int g = 0; g < 16; ++g) {
        const int sc = nearest_clamped(scales[g] * inverse(d), -32, 31);
        const int stored = sc + 32;
        packed[g % 8] |= uint8_t((stored & 15) << (g < 8 ? 0 : 4));
        packed[8 + g % 4] |= uint8_t((stored >> 4) << (2 * (g / 4)));
        const float id = inverse(d * float(sc));
        for (int l = 0; l < 16; ++l) {
            const int e = 16 * g + l;
            const int q = nearest_clamped(x[e] * id, -4, 3);
            if (q >= 0) hmask[e % 32] |= uint8_t(1 << (e / 32));
            put_two_bits(qs, e, q >= 0 ? q : q + 4);
        }
    }
}

void quantize_iq4_xs(const float* x, uint8_t* b) {
    float scales[8];
    for (int g = 0; g < 8; ++g) scales[g] = fit_scale(x + 32 * g, 32, iq4_grid);
    const float d = stored_half(max_abs_of(scales, 8) / 31.0f);
    put_half(b, d);
    int scales_h = 0;
    std::memset(b + 4, 0, 4);
    for (int g = 0; g < 8; ++g) {
        const int sc = nearest_clamped(scales[g] * inverse(d), -32, 31);
        const int ls = sc + 32;
        b[4 + g / 2] |= uint8_t((ls & 15) << (4 * (g % 2)));
        scales_h |= (ls >> 4) << (2 * g);
        const float id = inverse(d * float(sc));
        int q[32];
        for (int l = 0; l < 32; ++l) q[l] = id != 0.0f ? codebook_index(x[32 * g + l] * id) : 8;
        put_nibbles(b + 8 + 16 * g, q);
    }
    b[2] = uint8_t(scales_h & 0xff);
    b[3] = uint8_t(scales_h >> 8);
}

}  // namespace

void quantize_blocks(dtype t, const float* src, void* dst, int64_t n) {
    if (!is_block_quantized(t)) return;
    auto* b = static_cast<uint8_t*>(dst);
    const int per_block = block_values(t), bytes = block_bytes(t);
    for (int64_t i = 0; i + per_block <= n; i += per_block, b += bytes) {
        const float* x = src + i;
        switch (t) {
            case dtype::q4_k: quantize_q4_k_or_q5_k(x, b, false); break;
            case dtype::q5_k: quantize_q4_k_or_q5_k(x, b, true); break;
            case dtype::q6_k: quantize_q6_k(x, b); break;
            case dtype::q2_k: quantize_q2_k(x, b); break;
            case dtype::q3_k: quantize_q3_k(x, b); break;
            case dtype::iq4_xs: quantize_iq4_xs(x, b); break;
            default: quantize_legacy_block(t, x, b); break;
        }
    }
}

}  // namespace llmq::kernels

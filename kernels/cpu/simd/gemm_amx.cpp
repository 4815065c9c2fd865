// The amx ISA: avx512_bf16's kernel table with the Q8_0 prefill GEMM (M > gemm_small_max_m)
// on AMX INT8 tiles. Built alone with avx512_bf16's flags plus -mamx-tile -mamx-int8
// -mamx-bf16 (kernels/meson.build), in namespace llmq::kernels::amx; reached only through
// detail::amx_table() after isa_supported(isa::amx), which includes the OS's permission for
// the tile state (cpu_features.cpp).
//
// Numerics are those of the VNNI panels (gemm_panels_simd.cpp): x quantized per 32-value
// block (d = max|x| / 127, q = round(x / d) to nearest even, clamped to +-127), the integer
// dot product of each block exact, then acc += float(sum) * (d_w * d_x) block by block in K
// order. Here x stays signed: tdpbssd is s8 x s8, so no offset correction is needed.
//
// Tiles (one configuration per call, released at its end): C0..C3 a 2 x 2 grid of 16 x 16
// int32 sums (32 rows of x by 32 weight rows), A0, A1 16 rows x 32 bytes of quantized x (one
// Q8_0 block of 16 rows), B0, B1 8 x 64 bytes (one block of 16 weight rows in the pairs-of-
// four layout tdpbssd reads: row s holds bytes 4s .. 4s + 3 of each of the 16 columns). A K
// step is one block, because each block has its own scales: after it the four C tiles are
// stored and added, scaled, into the f32 tile of y (in L1).
#include <immintrin.h>

#include <cstring>

#include "../kernel_table.hpp"
#include "../quant_activations.hpp"

namespace llmq::kernels::amx {
namespace {

constexpr int64_t QV = q8_0_block_values;  // 32
constexpr int64_t QB = q8_0_block_bytes;   // 34
constexpr int64_t TM = 32;                 // rows of x per C grid
constexpr int64_t TN = 32;                 // weight rows (columns of y) per C grid
constexpr int64_t MC = 256;                // x rows quantized at a time
constexpr int64_t PACKED_BLOCK = 2 * 8 * 64;  // bytes of B0 + B1 for one block

struct alignas(64) tile_config {
    uint8_t palette_id = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// 64-byte aligned scratch per thread (detail::scratch_buffer, not std::vector: a vector's
// out-of-line members would be symbols outside this namespace, compiled with AMX flags).
struct amx_buffers {
    detail::scratch_buffer xq;  // MC rows of K int8 (rows past M zero)
    detail::scratch_buffer xs;  // MC rows of K / 32 f32 scales
    detail::scratch_buffer wp;  // K / 32 blocks of PACKED_BLOCK bytes
    detail::scratch_buffer ws;  // K / 32 blocks of TN f32 scales
};
thread_local amx_buffers buffers;

void configure_tiles() {
    tile_config c;
    for (int t = 0; t < 4; ++t) c.colsb[t] = 64, c.rows[t] = 16;  // C: 16 x 16 int32
    for (int t = 4; t < 6; ++t) c.colsb[t] = 32, c.rows[t] = 16;  // A: 16 rows x 32 int8
    for (int t = 6; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 8;   // B: 8 steps x 16 columns x 4
    _tile_loadconfig(&c);
}

// Rows [0, rows) of x quantized per block into xq (row stride K) and xs (row stride K / 32);
// rows [rows, rows_padded) zero.
void quantize_rows(const float* x, int64_t ldx, int64_t rows, int64_t rows_padded, int64_t K, int8_t* xq,
                   float* xs) {
    const int64_t blocks = K / QV;
    const __m512i top = _mm512_set1_epi32(127), bottom = _mm512_set1_epi32(-127);
    for (int64_t m = 0; m < rows; ++m)
        for (int64_t b = 0; b < blocks; ++b) {
            const float* v = x + m * ldx + b * QV;
            const __m512 lo = _mm512_loadu_ps(v), hi = _mm512_loadu_ps(v + 16);
            const float d = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi))) / 127.0f;
            const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
            const __m512i qlo = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(lo, id)), top), bottom);
            const __m512i qhi = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(hi, id)), top), bottom);
            int8_t* q = xq + m * K + b * QV;
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(qlo));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(qhi));
            xs[m * blocks + b] = d;
        }
    for (int64_t m = rows; m < rows_padded; ++m) {
        std::memset(xq + m * K, 0, std::size_t(K));
        for (int64_t b = 0; b < blocks; ++b) xs[m * blocks + b] = 0.0f;
    }
}

// Weight rows [0, nr) (nr <= TN) into B tile layout, every block: wp[b * PACKED_BLOCK + g *
// 512 + s * 64 + 4 c + t] = q[row 16 g + c][32 b + 4 s + t]; scales ws[b * TN + j]. Rows past
// nr zero.
void pack_weights(const uint8_t* w, int64_t ldw, int nr, int64_t blocks, int8_t* wp, float* ws) {
    for (int64_t b = 0; b < blocks; ++b) {
        int8_t* dst = wp + b * PACKED_BLOCK;
        for (int j = 0; j < TN; ++j) {
            int8_t* col = dst + (j / 16) * 512 + (j % 16) * 4;
            if (j >= nr) {
                for (int s = 0; s < 8; ++s) std::memset(col + s * 64, 0, 4);
                ws[b * TN + j] = 0.0f;
                continue;
            }
            const uint8_t* block = w + j * ldw + b * QB;
            for (int s = 0; s < 8; ++s) std::memcpy(col + s * 64, block + 2 + 4 * s, 4);
            uint16_t bits;
            std::memcpy(&bits, block, 2);
            ws[b * TN + j] = _cvtsh_ss(bits);
        }
    }
}

// y rows [0, mr) x columns [0, nr) of the C grid at quantized rows xq (stride K), every block.
void grid(const int8_t* xq, const float* xs, int64_t K, const int8_t* wp, const float* ws, float* y, int64_t ldy,
          int mr, int nr) {
    const int64_t blocks = K / QV;
    alignas(64) float acc[TM][TN] = {};
    alignas(64) int32_t c[4][16][16];
    for (int64_t b = 0; b < blocks; ++b) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        _tile_loadd(4, xq + b * QV, K);
        _tile_loadd(5, xq + 16 * K + b * QV, K);
        _tile_loadd(6, wp + b * PACKED_BLOCK, 64);
        _tile_loadd(7, wp + b * PACKED_BLOCK + 512, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        _tile_stored(2, c[2], 64);
        _tile_stored(3, c[3], 64);
        const __m512 w0 = _mm512_load_ps(ws + b * TN), w1 = _mm512_load_ps(ws + b * TN + 16);
        for (int r = 0; r < TM; ++r) {
            const __m512 dx = _mm512_set1_ps(xs[r * blocks + b]);
            const int half = r / 16, row = r % 16;
            float* a = acc[r];
            _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[2 * half][row])),
                                               _mm512_mul_ps(w0, dx), _mm512_load_ps(a)));
            _mm512_store_ps(a + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[2 * half + 1][row])),
                                                    _mm512_mul_ps(w1, dx), _mm512_load_ps(a + 16)));
        }
    }
    const __mmask16 m0 = nr >= 16 ? __mmask16(0xffff) : __mmask16((1u << nr) - 1u);
    const __mmask16 m1 = nr >= 32 ? __mmask16(0xffff) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1u);
    for (int r = 0; r < mr; ++r) {
        _mm512_mask_storeu_ps(y + r * ldy, m0, _mm512_load_ps(acc[r]));
        _mm512_mask_storeu_ps(y + r * ldy + 16, m1, _mm512_load_ps(acc[r] + 16));
    }
}

// False, having written nothing, when the scratch cannot be allocated.
bool gemm_q8_0_tiles(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw, float* y,
                     int64_t ldy, int64_t n_begin, int64_t n_end) {
    const int64_t blocks = K / QV;
    const int64_t mc_max = ((M < MC ? M : MC) + TM - 1) / TM * TM;
    amx_buffers& buf = buffers;
    auto* xq = static_cast<int8_t*>(buf.xq.reserve(std::size_t(mc_max * K)));
    auto* xs = static_cast<float*>(buf.xs.reserve(std::size_t(mc_max * blocks) * sizeof(float)));
    auto* wp = static_cast<int8_t*>(buf.wp.reserve(std::size_t(blocks * PACKED_BLOCK)));
    // 64-byte aligned, for the aligned loads in grid().
    auto* ws = static_cast<float*>(buf.ws.reserve(std::size_t(blocks * TN) * sizeof(float)));
    if (xq == nullptr || xs == nullptr || wp == nullptr || ws == nullptr) return false;
    configure_tiles();
    for (int64_t m0 = 0; m0 < M; m0 += MC) {
        const int64_t mc = M - m0 < MC ? M - m0 : MC;
        const int64_t padded = (mc + TM - 1) / TM * TM;
        quantize_rows(x + m0 * ldx, ldx, mc, padded, K, xq, xs);
        for (int64_t n = n_begin; n < n_end; n += TN) {
            const int nr = static_cast<int>(n_end - n < TN ? n_end - n : TN);
            pack_weights(w + n * ldw, ldw, nr, blocks, wp, ws);
            for (int64_t t = 0; t < padded; t += TM) {
                const int mr = static_cast<int>(mc - t < TM ? mc - t : TM);
                grid(xq + t * K, xs + t * blocks, K, wp, ws, y + (m0 + t) * ldy + n, ldy, mr, nr);
            }
        }
    }
    _tile_release();
    return true;
}

void gemm_entry(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt, int64_t ldw,
                float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    if (wt == dtype::q8_0 && M > detail::gemm_small_max_m && K % QV == 0 &&
        gemm_q8_0_tiles(x, M, K, ldx, static_cast<const uint8_t*>(w), ldw, y, ldy, n_begin, n_end))
        return;
    detail::avx512_bf16_table().gemm(x, M, K, ldx, w, wt, ldw, y, ldy, n_begin, n_end);
}

}  // namespace
}  // namespace llmq::kernels::amx

namespace llmq::kernels::detail {

const kernel_table& amx_table() {
    static const kernel_table table = [] {
        kernel_table t = avx512_bf16_table();
        t.which = isa::amx;
        t.gemm = amx::gemm_entry;
        return t;
    }();
    return table;
}

}  // namespace llmq::kernels::detail

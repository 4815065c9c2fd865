// Vectorised GEMM / GEMV, y[m, n] = sum_k x[m, k] * w[n, k], for one ISA.
//
// Both operands are K-contiguous, so the micro-kernel works in dot-product form: a tile of
// MR rows of x times NR rows of w keeps MR x NR vector accumulators, each summing W lanes of
// partial products along K; per step of W values it loads MR x vectors and NR w vectors and
// issues MR * NR FMAs (each x load is reused NR times, each w load MR times). At the end of a
// K block the accumulators are reduced four at a time (hsum4) and added into y.
//
//   tile (AVX-512, MR = 3, NR = 8):        k ->  k+16 ...
//     acc[0][0..7]  x row m   · w rows n..n+7
//     acc[1][0..7]  x row m+1 · w rows n..n+7       24 zmm accumulators + 3 x + 1 w
//     acc[2][0..7]  x row m+2 · w rows n..n+7
//
// Three drivers:
//  * direct (M <= MR, i.e. decode and tiny batches): one row tile, the whole K at once, w
//    rows read in place and widened to f32 in registers. Each weight byte is read exactly
//    once; for M = 1 the tile is 1 x 8 (eight accumulator chains and eight weight streams in
//    flight, enough to keep the memory system busy from one core).
//  * small (MR < M <= SMALL_M, batched decode): x packed as below; per NR weight rows and K
//    block, the first row tile streams and widens w as the direct tile does and leaves the
//    widened block in an L1 panel for the other row tiles (see gemm_small_m).
//  * packed (M > MR, prefill): x in blocks of mc rows by the whole K, copied once into an
//    aligned 1 MiB buffer that stays in L2, in step-major order (per K block of KC values and
//    row tile: step s holds the MR rows' W values side by side); for each NR-row panel of w,
//    its K blocks are widened one at a time into an L1 buffer in the same order and used by
//    every row tile before the next, so the panel's y tiles stay in cache across K blocks.
//    Both streams are contiguous and 64-byte aligned whatever the caller's strides (x rows
//    8 KiB apart would otherwise share L1 sets), tails are zero-padded to whole vectors, the
//    next panel block is prefetched into L2 while the current one is in use, and with
//    M <= mc (about 1 MiB / (4 K) rows, 126 for K = 2048) each weight byte is read once.
// All arithmetic is f32; widening f16 / bf16 / Q8_0 to f32 is exact.
#include <cstdlib>
#include <type_traits>

#include "panel_prefetch.hpp"
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

#if defined(__AVX512F__)
constexpr int MR = 3;
constexpr int NR = 8;
#else
constexpr int MR = 3;
constexpr int NR = 4;
#endif
constexpr int NR_DECODE = 8;
constexpr int64_t KC = 512;  // multiple of W and of the Q8_0 block; 3 x rows + panel in L1
constexpr int64_t X_BLOCK_FLOATS = 1 << 18;  // the packed x block (1 MiB of f32) kept in L2

#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 512
#endif
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- weight loaders: W consecutive values of one row, from element k, widened to f32

// offset(k): the byte offset of element k in a row (k a multiple of 32 for Q8_0).
struct load_f32 {
    static int64_t offset(int64_t k) { return k * 4; }
    static vf full(const uint8_t* row, int64_t k) { return vload(reinterpret_cast<const float*>(row) + k); }
    static vf part(const uint8_t* row, int64_t k, int n) {
        return vloadn(reinterpret_cast<const float*>(row) + k, n);
    }
};
struct load_f16 {
    static int64_t offset(int64_t k) { return k * 2; }
    static vf full(const uint8_t* row, int64_t k) {
        return vload_f16(reinterpret_cast<const uint16_t*>(row) + k);
    }
    static vf part(const uint8_t* row, int64_t k, int n) {
        return vload_f16n(reinterpret_cast<const uint16_t*>(row) + k, n);
    }
};
struct load_bf16 {
    static int64_t offset(int64_t k) { return k * 2; }
    static vf full(const uint8_t* row, int64_t k) {
        return vload_bf16(reinterpret_cast<const uint16_t*>(row) + k);
    }
    static vf part(const uint8_t* row, int64_t k, int n) {
        return vload_bf16n(reinterpret_cast<const uint16_t*>(row) + k, n);
    }
};
// Q8_0: K is a multiple of 32 and W divides 32, so a vector never straddles two blocks and
// there is never a partial vector.
struct load_q8_0 {
    static int64_t offset(int64_t k) { return k / q8_0_block_values * q8_0_block_bytes; }
    static vf full(const uint8_t* row, int64_t k) {
        const uint8_t* block = row + (k >> 5) * q8_0_block_bytes;
        const vf q = vload_i8(reinterpret_cast<const int8_t*>(block + 2 + (k & 31)));
        return vmul(vset1(half_to_float(block)), q);
    }
    static vf part(const uint8_t* row, int64_t k, int n) { return vkeep(full(row, k), n, vzero()); }
};

// ---- micro-kernels

template <int mr_, int nr_>
inline void zero_tile(vf (&acc)[mr_][nr_]) {
#pragma GCC unroll 8
    for (int i = 0; i < mr_; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < nr_; ++j) acc[i][j] = vzero();
}

// The prefetches of a tile that streams weight row j (of nr_) from memory, at element k.
template <class L, int nr_>
inline void prefetch_stream(const uint8_t* w, int64_t ldw, int j, int64_t k) {
    // Weights stream from memory once: prefetch ahead so that enough misses are in flight
    // (with 2-byte weights a step covers only half a line per row).
    _mm_prefetch(reinterpret_cast<const char*>(w + j * ldw + L::offset(k) + PREFETCH_BYTES), _MM_HINT_T0);
    // And the same place of the next tile's row into L2: rows of 2-byte weights are a page
    // each, so every tile would otherwise start cold streams (f32 rows gain nothing).
    if constexpr (!std::is_same_v<L, load_f32>)
        _mm_prefetch(reinterpret_cast<const char*>(w + (j + nr_) * ldw + L::offset(k)), _MM_HINT_T1);
}

// Reduces the accumulators and writes (accumulate = false) or adds them to y[i][j].
template <int mr_, int nr_>
inline void store_tile(vf (&acc)[mr_][nr_], float* y, int64_t ldy, bool accumulate) {
#pragma GCC unroll 8
    for (int i = 0; i < mr_; ++i) {
        float* yr = y + i * ldy;
        int j = 0;
#if defined(__AVX512F__)
        for (; j + 8 <= nr_; j += 8) {
            __m256 s = hsum8(&acc[i][j]);
            if (accumulate) s = _mm256_add_ps(s, _mm256_loadu_ps(yr + j));
            _mm256_storeu_ps(yr + j, s);
        }
#endif
        for (; j + 4 <= nr_; j += 4) {
            __m128 s = hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
            if (accumulate) s = _mm_add_ps(s, _mm_loadu_ps(yr + j));
            _mm_storeu_ps(yr + j, s);
        }
        for (; j < nr_; ++j) {
            const float s = vhsum(acc[i][j]);
            yr[j] = accumulate ? yr[j] + s : s;
        }
    }
}

// Direct tile: x rows of ldx floats, w rows of ldw bytes read through L, over K values.
template <int mr_, int nr_, class L>
inline void tile_direct(const float* x, int64_t ldx, const uint8_t* w, int64_t ldw, int64_t K,
                        float* y, int64_t ldy) {
    vf acc[mr_][nr_];
    zero_tile(acc);
    int64_t k = 0;
    for (; k + W <= K; k += W) {
        vf xv[mr_];
#pragma GCC unroll 8
        for (int i = 0; i < mr_; ++i) xv[i] = vload(x + i * ldx + k);
#pragma GCC unroll 8
        for (int j = 0; j < nr_; ++j) {
            prefetch_stream<L, nr_>(w, ldw, j, k);
            vf wv = L::full(w + j * ldw, k);
            // Keep wv in a register: folded into each FMA as a memory operand it would be
            // loaded mr_ times and the loop would be bound by loads, not FMAs.
            __asm__("" : "+v"(wv));
#pragma GCC unroll 8
            for (int i = 0; i < mr_; ++i) acc[i][j] = vfma(xv[i], wv, acc[i][j]);
        }
    }
    if (k < K) {
        const int n = static_cast<int>(K - k);
        vf xv[mr_];
        for (int i = 0; i < mr_; ++i) xv[i] = vloadn(x + i * ldx + k, n);
        for (int j = 0; j < nr_; ++j) {
            const vf wv = L::part(w + j * ldw, k, n);
            for (int i = 0; i < mr_; ++i) acc[i][j] = vfma(xv[i], wv, acc[i][j]);
        }
    }
    store_tile<mr_, nr_>(acc, y, ldy, false);
}

// Direct tile for Q8_0 rows, one 32-value block at a time: the block's products are summed
// unscaled (its int8 values widened to f32) and then scaled once by its d. The fp16 scales of
// the next GROUP blocks of every row are first widened into a small f32 array (one memory-
// operand conversion each), so the per-block scaling is an FMA with a broadcast from memory
// instead of a register insert + convert + broadcast on the shuffle port. Weights are
// prefetched PREFETCH_BYTES ahead, and the next tile's rows into L2: the conversion work per
// byte would otherwise stall the out-of-order window before enough misses are in flight.
template <int mr_, int nr_>
inline void tile_direct_q8_0(const float* x, int64_t ldx, const uint8_t* w, int64_t ldw, int64_t K,
                             float* y, int64_t ldy) {
    constexpr int V = q8_0_block_values / W;  // vectors per block
    constexpr int GROUP = 8;
    vf acc[mr_][nr_];
    zero_tile(acc);
    const int64_t blocks = K / q8_0_block_values;
    alignas(64) float scales[nr_][GROUP];
    for (int64_t b0 = 0; b0 < blocks; b0 += GROUP) {
        const int group = static_cast<int>(min64(GROUP, blocks - b0));
        for (int j = 0; j < nr_; ++j)
            for (int g = 0; g < group; ++g) {
                const uint8_t* block = w + j * ldw + (b0 + g) * q8_0_block_bytes;
                _mm_store_ss(&scales[j][g], _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block))));
            }
        for (int g = 0; g < group; ++g) {
            const int64_t b = b0 + g;
            vf xv[mr_][V];
#pragma GCC unroll 8
            for (int i = 0; i < mr_; ++i)
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) xv[i][v] = vload(x + i * ldx + b * q8_0_block_values + v * W);
#pragma GCC unroll 8
            for (int j = 0; j < nr_; ++j) {
                const uint8_t* block = w + j * ldw + b * q8_0_block_bytes;
                _mm_prefetch(reinterpret_cast<const char*>(block + PREFETCH_BYTES), _MM_HINT_T0);
                _mm_prefetch(reinterpret_cast<const char*>(block + nr_ * ldw), _MM_HINT_T1);  // next tile's row
                const auto* q = reinterpret_cast<const int8_t*>(block + 2);
                vf qv[V];
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) qv[v] = vload_i8(q + v * W);
#pragma GCC unroll 8
                for (int i = 0; i < mr_; ++i) {
                    vf sum = vmul(xv[i][0], qv[0]);
#pragma GCC unroll 4
                    for (int v = 1; v < V; ++v) sum = vfma(xv[i][v], qv[v], sum);
                    acc[i][j] = vfma(vset1(scales[j][g]), sum, acc[i][j]);
                }
            }
        }
    }
    store_tile<mr_, nr_>(acc, y, ldy, false);
}

// Packed tile: xp holds `steps` steps of MR x W floats, wp `steps` steps of NR x W floats.
template <int mr_, int nr_>
inline void tile_packed(const float* xp, const float* wp, int64_t steps, float* y, int64_t ldy,
                        bool accumulate) {
    vf acc[mr_][nr_];
    zero_tile(acc);
    for (int64_t s = 0; s < steps; ++s, xp += MR * W, wp += NR * W) {
        vf xv[mr_];
#pragma GCC unroll 8
        for (int i = 0; i < mr_; ++i) xv[i] = vload(xp + i * W);
#pragma GCC unroll 8
        for (int j = 0; j < nr_; ++j) {
            vf wv = vload(wp + j * W);
            __asm__("" : "+v"(wv));  // as in tile_direct
#pragma GCC unroll 8
            for (int i = 0; i < mr_; ++i) acc[i][j] = vfma(xv[i], wv, acc[i][j]);
        }
    }
    store_tile<mr_, nr_>(acc, y, ldy, accumulate);
}

// ---- edge dispatch: the (mr, nr) of a tile at the bottom / right edge of y

// Column tile widths: NR_DECODE (M = 1), NR, 4, 1.
inline int column_tile(int64_t M, int64_t left) {
    const int widest = M == 1 ? NR_DECODE : NR;
    if (left >= widest) return widest;
    if (left >= NR) return NR;
    return left >= 4 ? 4 : 1;
}

template <class L, int mr_>
inline void direct_columns(int nr, const float* x, int64_t ldx, const uint8_t* w, int64_t ldw,
                           int64_t K, float* y, int64_t ldy) {
    if constexpr (std::is_same_v<L, load_q8_0>) {
        if constexpr (mr_ == 1)
            if (nr == NR_DECODE) return tile_direct_q8_0<1, NR_DECODE>(x, ldx, w, ldw, K, y, ldy);
        if (nr == NR) return tile_direct_q8_0<mr_, NR>(x, ldx, w, ldw, K, y, ldy);
        if (nr == 4) return tile_direct_q8_0<mr_, 4>(x, ldx, w, ldw, K, y, ldy);
        return tile_direct_q8_0<mr_, 1>(x, ldx, w, ldw, K, y, ldy);
    }
    if constexpr (mr_ == 1)
        if (nr == NR_DECODE) return tile_direct<1, NR_DECODE, L>(x, ldx, w, ldw, K, y, ldy);
    if (nr == NR) return tile_direct<mr_, NR, L>(x, ldx, w, ldw, K, y, ldy);
    if (nr == 4) return tile_direct<mr_, 4, L>(x, ldx, w, ldw, K, y, ldy);
    return tile_direct<mr_, 1, L>(x, ldx, w, ldw, K, y, ldy);
}

template <int mr_>
inline void packed_columns(int nr, const float* xp, const float* wp, int64_t steps, float* y,
                           int64_t ldy, bool accumulate) {
    if (nr == NR) return tile_packed<mr_, NR>(xp, wp, steps, y, ldy, accumulate);
    if (nr == 4) return tile_packed<mr_, 4>(xp, wp, steps, y, ldy, accumulate);
    return tile_packed<mr_, 1>(xp, wp, steps, y, ldy, accumulate);
}

static_assert(MR == 3, "the edge dispatch below covers mr = 1..3");

template <class L>
void gemm_direct(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w,
                 int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    for (int64_t n = n_begin; n < n_end;) {
        const int nr = column_tile(M, n_end - n);
        const uint8_t* rows = w + n * ldw;
        switch (M) {
            case 3: direct_columns<L, 3>(nr, x, ldx, rows, ldw, K, y + n, ldy); break;
            case 2: direct_columns<L, 2>(nr, x, ldx, rows, ldw, K, y + n, ldy); break;
            default: direct_columns<L, 1>(nr, x, ldx, rows, ldw, K, y + n, ldy); break;
        }
        n += nr;
    }
}

// ---- the packed driver

// Per-thread home of the packed x block (1 MiB, more only when K is so large that MR rows of
// it need more): too large for the stack of an arbitrary worker thread; grown when needed,
// freed when the thread ends.
struct x_block_buffer {
    float* data = nullptr;
    int64_t floats = 0;
    ~x_block_buffer() { std::free(data); }
};
thread_local x_block_buffer x_block;

// Room for at least `floats` floats (and at least X_BLOCK_FLOATS); NULL when out of memory.
float* packed_x_storage(int64_t floats) {
    if (floats < X_BLOCK_FLOATS) floats = X_BLOCK_FLOATS;
    if (x_block.floats < floats) {
        std::free(x_block.data);
        floats = (floats + 15) / 16 * 16;  // aligned_alloc wants a multiple of the alignment
        x_block.data = static_cast<float*>(std::aligned_alloc(64, std::size_t(floats) * sizeof(float)));
        x_block.floats = x_block.data != nullptr ? floats : 0;
    }
    return x_block.data;
}

// Copies rows [0, mc) x columns [0, kc) of x (row stride ldx) into dst: row tile t at
// dst + t * MR * steps * W, step s of it holding the tile's rows' values s*W .. s*W+W-1.
void pack_x(const float* x, int64_t ldx, int64_t mc, int64_t kc, int64_t steps, float* dst) {
    for (int64_t t = 0; t * MR < mc; ++t) {
        const int mr = static_cast<int>(min64(MR, mc - t * MR));
        float* tile = dst + t * MR * steps * W;
        for (int i = 0; i < mr; ++i) {
            const float* row = x + (t * MR + i) * ldx;
            for (int64_t s = 0; s < steps; ++s) {
                const int64_t k = s * W;
                vstore(tile + (s * MR + i) * W, k + W <= kc ? vload(row + k) : vloadn(row + k, int(kc - k)));
            }
        }
    }
}

// Widens rows [0, nr) x columns [k0, k0 + kc) of w into dst, step-major (NR rows a step).
template <class L>
void pack_w(const uint8_t* w, int64_t ldw, int nr, int64_t k0, int64_t kc, int64_t steps, float* dst) {
    for (int j = 0; j < nr; ++j) {
        const uint8_t* row = w + j * ldw;
        for (int64_t s = 0; s < steps; ++s) {
            const int64_t k = s * W;
            vstore(dst + (s * NR + j) * W, k + W <= kc ? L::full(row, k0 + k) : L::part(row, k0 + k, int(kc - k)));
        }
    }
}

template <class L>
void gemm_packed(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w,
                 int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    // The x block is mc rows by the whole K (K blocks one after another, each in the tile
    // layout of pack_x), so that for one weight panel all K blocks run back to back and the
    // panel's y tiles stay in cache between them; mc is what fits X_BLOCK_FLOATS.
    const int64_t k_steps = (K / KC) * (KC / W) + (K % KC + W - 1) / W;  // steps over all K blocks
    int64_t mc_block = X_BLOCK_FLOATS / (k_steps * W) / MR * MR;
    if (mc_block < MR) mc_block = MR;
    if (mc_block > M) mc_block = (M + MR - 1) / MR * MR;
    float* xp = packed_x_storage(mc_block * k_steps * W);
    if (xp == nullptr) {  // out of memory: fall back to direct row tiles
        for (int64_t m = 0; m < M; m += MR)
            gemm_direct<L>(x + m * ldx, min64(MR, M - m), K, ldx, w, ldw, y + m * ldy, ldy, n_begin, n_end);
        return;
    }
    alignas(64) float panel[(KC / W) * NR * W];
    for (int64_t m0 = 0; m0 < M; m0 += mc_block) {
        const int64_t mc = min64(mc_block, M - m0);
        const int64_t tiles = (mc + MR - 1) / MR;
        // K block k0 of the x block starts at xp + tiles * MR * W * (steps before k0).
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kc = min64(KC, K - k0);
            pack_x(x + m0 * ldx + k0, ldx, mc, kc, (kc + W - 1) / W, xp + tiles * MR * W * (k0 / W));
        }
        for (int64_t n = n_begin; n < n_end;) {
            const int nr = column_tile(M, n_end - n);
            for (int64_t k0 = 0; k0 < K; k0 += KC) {
                const int64_t kc = min64(KC, K - k0);
                const int64_t steps = (kc + W - 1) / W;
                const float* block_x = xp + tiles * MR * W * (k0 / W);
                pack_w<L>(w + n * ldw, ldw, nr, k0, kc, steps, panel);
                // Prefetch what pack_w reads next: this panel's next K block, else the next
                // panel's first.
                panel_prefetch next;
                int lines_per_tile = 0;
                if (k0 + KC < K) {
                    next.start(w + n * ldw, ldw, nr, L::offset(k0 + KC), L::offset(min64(K, k0 + 2 * KC)));
                } else if (n + nr < n_end) {
                    next.start(w + (n + nr) * ldw, ldw, column_tile(M, n_end - n - nr), L::offset(0),
                               L::offset(min64(K, KC)));
                }
                if (next.count > 0) {
                    const int64_t lines = next.count * ((next.end - next.begin) / 64 + 1);
                    lines_per_tile = static_cast<int>((lines + tiles - 1) / tiles);
                }
                for (int64_t t = 0; t < tiles; ++t) {
                    next.issue(lines_per_tile);
                    const int mr = static_cast<int>(min64(MR, mc - t * MR));
                    const float* tile_x = block_x + t * MR * steps * W;
                    float* tile_y = y + (m0 + t * MR) * ldy + n;
                    switch (mr) {
                        case 3: packed_columns<3>(nr, tile_x, panel, steps, tile_y, ldy, k0 > 0); break;
                        case 2: packed_columns<2>(nr, tile_x, panel, steps, tile_y, ldy, k0 > 0); break;
                        default: packed_columns<1>(nr, tile_x, panel, steps, tile_y, ldy, k0 > 0); break;
                    }
                }
            }
            n += nr;
        }
    }
}

// Small batches (batched decode, MR < M <= SMALL_M): a step of M sequences should cost about
// one weight read plus M x the FMAs, with no jump at M = MR + 1. x is packed once as in the
// packed driver (it is small). Then per column tile of NR weight rows and K block of KC values,
// the first row tile streams the rows from memory the way the direct tile does (prefetched
// ahead, widened in registers) and also stores the widened block into an L1 panel; the other
// row tiles run the packed tile on that panel, so each weight is read from memory and widened
// once, and the memory stream never waits for a panel packer: the direct tile's prefetches
// keep it running through every row tile. Q8_0 rows keep the per-block direct tiles
// (gemm_small_m_direct).
constexpr int64_t SMALL_M = detail::gemm_small_max_m;
static_assert(MR == detail::gemm_direct_max_m, "gemm_path() names the drivers by these limits");

// The first row tile of a K block: xp the packed x tile, w the NR rows from element k0 on
// (kc values), y written (or added to); the widened weights go to panel in pack_w's layout.
template <int mr_, int nr_, class L>
inline void tile_stream(const float* xp, const uint8_t* w, int64_t ldw, int64_t k0, int64_t kc, float* panel,
                        float* y, int64_t ldy, bool accumulate) {
    vf acc[mr_][nr_];
    zero_tile(acc);
    int64_t s = 0;
    for (; (s + 1) * W <= kc; ++s, xp += MR * W) {
        const int64_t k = k0 + s * W;
        vf xv[mr_];
#pragma GCC unroll 8
        for (int i = 0; i < mr_; ++i) xv[i] = vload(xp + i * W);
#pragma GCC unroll 8
        for (int j = 0; j < nr_; ++j) {
            prefetch_stream<L, nr_>(w, ldw, j, k);
            vf wv = L::full(w + j * ldw, k);
            __asm__("" : "+v"(wv));  // as in tile_direct
            vstore(panel + (s * NR + j) * W, wv);
#pragma GCC unroll 8
            for (int i = 0; i < mr_; ++i) acc[i][j] = vfma(xv[i], wv, acc[i][j]);
        }
    }
    if (s * W < kc) {  // the packed x tail is zero-padded; so is the panel's
        const int n = static_cast<int>(kc - s * W);
        vf xv[mr_];
        for (int i = 0; i < mr_; ++i) xv[i] = vload(xp + i * W);
        for (int j = 0; j < nr_; ++j) {
            const vf wv = L::part(w + j * ldw, k0 + s * W, n);
            vstore(panel + (s * NR + j) * W, wv);
            for (int i = 0; i < mr_; ++i) acc[i][j] = vfma(xv[i], wv, acc[i][j]);
        }
    }
    store_tile<mr_, nr_>(acc, y, ldy, accumulate);
}

template <class L, int mr_>
inline void stream_columns(int nr, const float* xp, const uint8_t* w, int64_t ldw, int64_t k0, int64_t kc,
                           float* panel, float* y, int64_t ldy, bool accumulate) {
    if (nr == NR) return tile_stream<mr_, NR, L>(xp, w, ldw, k0, kc, panel, y, ldy, accumulate);
    if (nr == 4) return tile_stream<mr_, 4, L>(xp, w, ldw, k0, kc, panel, y, ldy, accumulate);
    return tile_stream<mr_, 1, L>(xp, w, ldw, k0, kc, panel, y, ldy, accumulate);
}

// The direct tiles with the column tile outermost: each row tile reads the column tile's
// weights again (from L1/L2) and widens them again. Q8_0 rows, and the fallback when the
// packed x block cannot be allocated.
template <class L>
void gemm_small_m_direct(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw,
                         float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    for (int64_t n = n_begin; n < n_end;) {
        const int nr = column_tile(M, n_end - n);
        const uint8_t* rows = w + n * ldw;
        for (int64_t m = 0; m < M; m += MR) {
            const float* xt = x + m * ldx;
            float* yt = y + m * ldy + n;
            switch (min64(MR, M - m)) {
                case 3: direct_columns<L, 3>(nr, xt, ldx, rows, ldw, K, yt, ldy); break;
                case 2: direct_columns<L, 2>(nr, xt, ldx, rows, ldw, K, yt, ldy); break;
                default: direct_columns<L, 1>(nr, xt, ldx, rows, ldw, K, yt, ldy); break;
            }
        }
        n += nr;
    }
}

template <class L>
void gemm_small_m(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw,
                  float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    const int64_t k_steps = (K / KC) * (KC / W) + (K % KC + W - 1) / W;
    const int64_t tiles = (M + MR - 1) / MR;
    float* xp = std::is_same_v<L, load_q8_0> ? nullptr : packed_x_storage(tiles * MR * k_steps * W);
    if (xp == nullptr) return gemm_small_m_direct<L>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = min64(KC, K - k0);
        pack_x(x + k0, ldx, M, kc, (kc + W - 1) / W, xp + tiles * MR * W * (k0 / W));
    }
    alignas(64) float panel[(KC / W) * NR * W];
    const int first = static_cast<int>(min64(MR, M));
    for (int64_t n = n_begin; n < n_end;) {
        const int nr = column_tile(M, n_end - n);
        const uint8_t* rows = w + n * ldw;
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kc = min64(KC, K - k0);
            const int64_t steps = (kc + W - 1) / W;
            const float* block_x = xp + tiles * MR * W * (k0 / W);
            switch (first) {
                case 3: stream_columns<L, 3>(nr, block_x, rows, ldw, k0, kc, panel, y + n, ldy, k0 > 0); break;
                case 2: stream_columns<L, 2>(nr, block_x, rows, ldw, k0, kc, panel, y + n, ldy, k0 > 0); break;
                default: stream_columns<L, 1>(nr, block_x, rows, ldw, k0, kc, panel, y + n, ldy, k0 > 0); break;
            }
            for (int64_t t = 1; t < tiles; ++t) {
                const float* tile_x = block_x + t * MR * steps * W;
                float* tile_y = y + t * MR * ldy + n;
                switch (min64(MR, M - t * MR)) {
                    case 3: packed_columns<3>(nr, tile_x, panel, steps, tile_y, ldy, k0 > 0); break;
                    case 2: packed_columns<2>(nr, tile_x, panel, steps, tile_y, ldy, k0 > 0); break;
                    default: packed_columns<1>(nr, tile_x, panel, steps, tile_y, ldy, k0 > 0); break;
                }
            }
        }
        n += nr;
    }
}

template <class L>
void gemm_for(const float* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w, int64_t ldw,
              float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    if (M <= MR)
        gemm_direct<L>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
    else if (M <= SMALL_M)
        gemm_small_m<L>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
    else
        gemm_packed<L>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
}

#if defined(__AVX512BF16__)
constexpr int64_t BF16_PANEL_MIN_M = 96;

// ---- bf16 x bf16 (opt-in reduced precision): vdpbf16ps adds the products of 32 bf16 pairs
// into 16 f32 lanes. Rows are read in place (x is already bf16, w is bf16), blocked over K.

inline __m512bh load_bh(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
inline __m512bh load_bhn(const uint16_t* p, int n) {
    const __mmask32 m = n >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << n) - 1u);
    return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}

template <int mr_, int nr_>
inline void tile_bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw,
                      int64_t kc, float* y, int64_t ldy, bool accumulate) {
    vf acc[mr_][nr_];
    zero_tile(acc);
    int64_t k = 0;
    for (; k + 32 <= kc; k += 32) {
        __m512bh xv[mr_];
#pragma GCC unroll 8
        for (int i = 0; i < mr_; ++i) xv[i] = load_bh(x + i * ldx + k);
#pragma GCC unroll 8
        for (int j = 0; j < nr_; ++j) {
            __m512bh wv = load_bh(w + j * ldw + k);
            __asm__("" : "+v"(wv));
#pragma GCC unroll 8
            for (int i = 0; i < mr_; ++i) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
        }
    }
    if (k < kc) {
        const int n = static_cast<int>(kc - k);
        __m512bh xv[mr_];
        for (int i = 0; i < mr_; ++i) xv[i] = load_bhn(x + i * ldx + k, n);
        for (int j = 0; j < nr_; ++j) {
            const __m512bh wv = load_bhn(w + j * ldw + k, n);
            for (int i = 0; i < mr_; ++i) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
        }
    }
    store_tile<mr_, nr_>(acc, y, ldy, accumulate);
}

template <int mr_>
inline void bf16_columns(int nr, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw,
                         int64_t kc, float* y, int64_t ldy, bool accumulate) {
    if constexpr (mr_ == 1)
        if (nr == NR_DECODE) return tile_bf16<1, NR_DECODE>(x, ldx, w, ldw, kc, y, ldy, accumulate);
    if (nr == NR) return tile_bf16<mr_, NR>(x, ldx, w, ldw, kc, y, ldy, accumulate);
    if (nr == 4) return tile_bf16<mr_, 4>(x, ldx, w, ldw, kc, y, ldy, accumulate);
    return tile_bf16<mr_, 1>(x, ldx, w, ldw, kc, y, ldy, accumulate);
}

void gemm_bf16(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const uint8_t* w_bytes,
               int64_t ldw_bytes, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    const auto* w = reinterpret_cast<const uint16_t*>(w_bytes);
    const int64_t ldw = ldw_bytes / 2;
    const int64_t kc_block = M <= MR ? K : 2 * KC;  // bf16 rows: half the bytes of f32 ones
    const int64_t mc_block = X_BLOCK_FLOATS / KC / MR * MR;
    for (int64_t m0 = 0; m0 < M; m0 += mc_block) {
        const int64_t mc = min64(mc_block, M - m0);
        for (int64_t k0 = 0; k0 < K; k0 += kc_block) {
            const int64_t kc = min64(kc_block, K - k0);
            for (int64_t n = n_begin; n < n_end;) {
                const int nr = column_tile(M, n_end - n);
                for (int64_t m = m0; m < m0 + mc; m += MR) {
                    const int mr = static_cast<int>(min64(MR, m0 + mc - m));
                    const uint16_t* xt = x + m * ldx + k0;
                    const uint16_t* wt = w + n * ldw + k0;
                    float* yt = y + m * ldy + n;
                    switch (mr) {
                        case 3: bf16_columns<3>(nr, xt, ldx, wt, ldw, kc, yt, ldy, k0 > 0); break;
                        case 2: bf16_columns<2>(nr, xt, ldx, wt, ldw, kc, yt, ldy, k0 > 0); break;
                        default: bf16_columns<1>(nr, xt, ldx, wt, ldw, kc, yt, ldy, k0 > 0); break;
                    }
                }
                n += nr;
            }
        }
    }
}
#endif

}  // namespace

void gemm_entry(const float* x, int64_t M, int64_t K, int64_t ldx, const void* w_, dtype wt,
                int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    const auto* w = static_cast<const uint8_t*>(w_);
#if defined(__AVX512BF16__) && defined(__AVX512VNNI__)
    // Q8_0 prefill with VNNI: the int8 outer-product panels of gemm_panels_simd.cpp, on x
    // quantized per block (gemm_quantizes_x); widened to f32 below if their buffers cannot be
    // allocated.
    if (wt == dtype::q8_0 && M > SMALL_M &&
        gemm_panels_q8_0(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end))
        return;
#endif
    switch (wt) {
        case dtype::f32: return gemm_for<load_f32>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
        case dtype::f16: return gemm_for<load_f16>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
        case dtype::bf16: return gemm_for<load_bf16>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
        // Exact widening to f32: the rows above gemm_integer_max_rows(q8_0), where it is
        // faster than the int8 dot products of quant_dot_simd.cpp (kernel_dispatch.cpp picks).
        case dtype::q8_0: return gemm_for<load_q8_0>(x, M, K, ldx, w, ldw, y, ldy, n_begin, n_end);
        default: return;  // not a weight type; the plugins refuse it before calling
    }
}

#if defined(__AVX512BF16__)
void gemm_bf16_dot_entry(const uint16_t* x, int64_t M, int64_t K, int64_t ldx, const void* w,
                         int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end) {
    // Above BF16_PANEL_MIN_M rows the outer-product panels of gemm_panels_simd.cpp win (at 64
    // rows the row tiles below are as fast: docs/benchmarks.md).
#if defined(__AVX512VNNI__)
    if (M >= BF16_PANEL_MIN_M &&
        gemm_panels_bf16_dot(x, M, K, ldx, static_cast<const uint8_t*>(w), ldw, y, ldy, n_begin, n_end))
        return;
#endif
    gemm_bf16(x, M, K, ldx, static_cast<const uint8_t*>(w), ldw, y, ldy, n_begin, n_end);
}
#endif

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

// CPU kernels: plain functions over pointers, shapes and strides. No runtime types, no I/O,
// no threads: every kernel that is worth splitting takes a range of its outermost parallel
// dimension, so the caller (a plugin or the runtime) spreads ranges over a device's cores.
// (The one exception is the pair of machine-limit probes at the end of this file, which start
// their own std::threads; they are for benchmarks, never for the serving path.)
//
// Every kernel is reentrant and keeps no state between calls: any thread may call any of them
// at the same time on disjoint outputs. Pointers are borrowed for the call only.
//
// Each vectorised kernel has a scalar reference (isa::scalar) beside it; the instruction set
// is chosen at run time from the CPU's features, so a binary built on an AVX-512 machine runs
// on one without it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "llmq/kernels/dtype.hpp"

namespace llmq::kernels {

// ------------------------------------------------------------------ features and ISA

enum class isa : int {
    scalar = 0,      // portable C++
    avx2 = 1,        // AVX2 + FMA + F16C
    avx512 = 2,      // AVX-512 F/BW/VL/DQ
    avx512_bf16 = 3,  // AVX-512 + BF16 + VNNI
    amx = 4           // avx512_bf16 + AMX tiles (INT8, BF16); the OS must grant tile state
};

struct cpu_features {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
    bool avx512_bf16 = false;
    bool avx512_vnni = false;
    // cpuid 7.0 edx 24 / 25 / 22 with XCR0 bits 17-18 and the tile permission granted
    // (arch_prctl ARCH_REQ_XCOMP_PERM, asked once at detection); all false if refused.
    bool amx_tile = false;
    bool amx_int8 = false;
    bool amx_bf16 = false;
};

// What this CPU has (cpuid + xgetbv: the OS must save the wide registers). Cached.
const cpu_features& detect_cpu_features();
// The best ISA this CPU supports and this build compiled. LLMQ_CPU_ISA=scalar|avx2|avx512|
// avx512_bf16 in the environment caps it (for tests and benchmarks); LLMQ_CPU_ISA=amx opts in
// to amx (never chosen by default: its Q8_0 prefill is not yet faster than VNNI's).
isa best_isa();
// Is `which` usable on this CPU with this build? (LLMQ_CPU_ISA does not change this answer.)
bool isa_supported(isa which);
const char* isa_name(isa which);
// Parses "scalar", "avx2", "avx512", "avx512_bf16", "amx"; returns false for anything else.
bool parse_isa(const char* name, isa* out);
// Every kernel taking an `isa` runs `which` if supported, else the best supported ISA below it
// (so asking for avx512_bf16 on an AVX2-only machine runs the AVX2 code, never faults).
isa usable_isa(isa which);

// ------------------------------------------------------------------ dtypes
//
// Every pointer to f32 / i32 data must be 4-byte aligned and every pointer to f16 / bf16 data
// 2-byte aligned (row strides in bytes included); Q8_0 rows may start anywhere.

// The dtypes themselves (ids, names, block layouts, row_bytes, dtype_name) are the table in
// llmq/kernels/dtype.hpp.

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
float bf16_to_fp32(uint16_t b);
uint16_t fp32_to_bf16(float f);  // round to nearest even

// Convert one row of n values of dtype t to f32 / from f32 (q8_0: n multiple of 32;
// quantisation as GGUF: per block d = max|x| / 127, q = round(x * (1 / d)) to nearest even,
// d stored as fp16; i32 and u8 convert numerically, rounding and clamping). Every ISA gives
// bit-identical rows (NaN inputs to q8_0 excepted: their q is unspecified). The block types
// q4_0 .. iq4_xs convert through dequantize_blocks / quantize_blocks (quant_blocks.hpp).
void row_to_f32(dtype t, const void* src, float* dst, int64_t n);
void row_from_f32(dtype t, const float* src, void* dst, int64_t n);

// ------------------------------------------------------------------ GEMM / GEMV

// y[m, n] = sum_k x[m, k] * w[n, k] for n in [n_begin, n_end), all m in [0, M).
//   x: M rows of K f32, row stride ldx (elements)
//   w: N rows of K values of wt, row stride ldw (BYTES)
//   y: M rows, row stride ldy (elements); columns outside [n_begin, n_end) untouched
// Reads each weight row once for all M rows (blocked over M inside). Cache-blocked over K.
// f32, f16 and bf16 weights (and Q8_0 above gemm_integer_max_rows(q8_0) rows) are widened
// exactly and all arithmetic is f32, so the only error is f32 summation (bounded by a few
// sqrt(K) ulp of sum |x w| in practice). With M > 16 the calling thread keeps a 1 MiB buffer
// (the packed block of x), allocated on its first such call and freed when the thread ends.
// Decode path (quantized weights, M <= gemm_integer_max_rows(wt) of quant_blocks.hpp: 32 for
// q4_k, q5_k and q6_k, 16 for q8_0, q3_k, iq4_xs, q4_0, q4_1, q5_0, q5_1 and iq4_nl, 3 for
// q2_k; K a multiple of the block): each row of
// x is quantized per 32 values to int8 (d = max|x| / 127, kept in f32) and the dot products
// are integer sums scaled per 32 values, so the error is that of the rounding of x, at most
// sum over the 32-value runs of d / 2 * sum |w| of the run, plus f32 summation (for q8_0 this
// is gemm_q8_0_int8, kernels/q8_0_int8.hpp). With more rows block-quantized weights are
// dequantized exactly to f32 a slab of rows at a time into the f32 GEMM. Each calling thread
// keeps buffers for the quantized x and the slab (grown as needed).
// Q8_0 prefill (M > 16) on avx512_bf16 quantizes x per 32 values as the decode path does and
// sums int8 products with vpdpbusd in outer-product panels (kernels/cpu/simd/
// gemm_panels_simd.cpp; same error bound as above; gemm_quantizes_x in gemm_units.hpp says
// when); the calling thread keeps up to ~1.2 MiB of panel buffers for it.
void gemm(isa which, const float* x, int64_t M, int64_t K, int64_t ldx, const void* w, dtype wt,
          int64_t ldw, float* y, int64_t ldy, int64_t n_begin, int64_t n_end);
// The driver gemm() runs for these arguments, in words ("direct row tiles", "small-M direct
// tiles, columns outermost", "outer-product panels, f32 FMA", "scalar reference"), for
// benchmark output.
const char* gemm_path(isa which, dtype wt, int64_t M);

// A good grain for splitting N across threads (multiple of the kernel's column tile).
int64_t gemm_column_grain(int64_t M, int64_t N, int64_t K);

// Reduced-precision GEMM for bf16 weights (opt-in, never the default): x already rounded to
// bf16 (row_from_f32(dtype::bf16, ...)), products of bf16 pairs summed in f32 with AVX-512
// BF16 vdpbf16ps (32 multiply-adds per instruction, twice an f32 FMA; it only pays where the
// CPU issues it as fast as an FMA, measure first). The rounding of x costs a relative error
// of up to 2^-9 per element, so results differ from gemm() by up to ~2e-3 of sum |x w|; on
// ISAs without AVX-512 BF16 it widens x to f32 and gives gemm()'s sums on the rounded x.
// From 96 rows it runs outer-product panels (gemm_panels_simd.cpp), below that row tiles.
//   x: M rows of K bf16 values, row stride ldx (elements); w: bf16, ldw in BYTES (even).
void gemm_bf16_dot(isa which, const uint16_t* x, int64_t M, int64_t K, int64_t ldx,
                   const void* w, int64_t ldw, float* y, int64_t ldy, int64_t n_begin,
                   int64_t n_end);

// ------------------------------------------------------------------ attention

// Causal attention over a paged cache; same contract as llmq_attention_args in
// plugins/llmq_plugin.h. Work is split over (sequence, query head) pairs:
// items [item_begin, item_end) of num_seqs * num_heads, item = s * num_heads + h.
// Block-wise online softmax: never materialises a full score row longer than block_size.
// The caller validates every index table first (block ids < num_blocks, context_len >= the
// sequence's query rows, query_start ascending); head_dim must be in
// [1, paged_attention_max_head_dim] and num_heads a multiple of num_kv_heads.
inline constexpr int32_t paged_attention_max_head_dim = 512;
struct paged_attention_params {
    const float* q;  // [num_tokens][num_heads][head_dim]
    float* out;      // [num_tokens][num_heads][head_dim]
    const void* k_cache;
    const void* v_cache;
    dtype kv_dtype;  // f32 or f16
    const int32_t* query_start;  // [num_seqs + 1]
    const int32_t* context_len;  // [num_seqs]
    const int32_t* block_tables;  // [num_seqs * max_blocks_per_seq]
    int32_t num_seqs;
    int32_t num_heads;
    int32_t num_kv_heads;
    int32_t head_dim;
    int32_t block_size;
    int32_t max_blocks_per_seq;
    float scale;
    // > 0: the query at position p attends to keys p - sliding_window + 1 .. p only.
    int32_t sliding_window = 0;
};
void paged_attention(isa which, const paged_attention_params& p, int64_t item_begin,
                     int64_t item_end);

// ------------------------------------------------------------------ element-wise

// y = x / sqrt(mean(x²) + eps) * weight over one row of n values (y may equal x).
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps);
// The same over `rows` consecutive rows (row stride = n); y may equal x (in place).
void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                   float eps);

// Rotary embedding, in place, on one token's heads: x is [num_heads][head_dim], rotated at
// position `pos`. Pairs are (i, i + head_dim/2) ("NeoX" style) when neox is true, else
// adjacent (2i, 2i+1) as GGUF Llama stores Q/K. freq_i = freq_scale * pos * theta^(-2i/d)
// (freq_scale = 1 / linear scaling factor). freq_factors, when not null, holds head_dim/2
// per-pair divisors as GGUF's rope_freqs tensor defines them (Llama 3.1 long-context RoPE):
// the frequency of pair i is divided by freq_factors[i].
void rope(float* x, int32_t num_heads, int32_t head_dim, int32_t pos, float theta,
          float freq_scale, bool neox, const float* freq_factors = nullptr);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// In-place numerically stable softmax over n values.
void softmax(float* x, int64_t n);
// dst = row `token` of an embedding table of dtype t with n values per row (ld in bytes).
void embedding_row(dtype t, const void* table, int64_t ld, int64_t token, float* dst,
                   int64_t n);
// y += x
void add_inplace(float* y, const float* x, int64_t n);

// The same element-wise kernels with the ISA named (the forms above use best_isa()); the
// conformance tests run each one on every ISA this CPU supports.
void rms_norm_rows(isa which, const float* x, const float* weight, float* y, int64_t rows,
                   int64_t n, float eps);
void swiglu(isa which, const float* gate, const float* up, float* out, int64_t n);
void softmax(isa which, float* x, int64_t n);
void add_inplace(isa which, float* y, const float* x, int64_t n);
void row_to_f32(isa which, dtype t, const void* src, float* dst, int64_t n);
void row_from_f32(isa which, dtype t, const float* src, void* dst, int64_t n);

// ------------------------------------------------------------------ machine limits
//
// Probes that benchmarks print beside their figures as "the physical limit measured in the
// same run". They start `threads` std::threads of their own (the only kernels that do), take
// a few hundred milliseconds to a few seconds, and return the best of several repetitions.

// How a probe times its rounds: by the wall clock (the default, and what a dedicated machine
// shows), or by the threads' own CPU time (each round lasts as long as its slowest thread ran;
// on a machine shared with other work this leaves out the time the threads were descheduled,
// not the cache and memory traffic of the others).
enum class probe_clock : int { wall = 0, thread_cpu = 1 };

// Read bandwidth of main memory in GB/s (1e9 bytes/s): `threads` threads each sum their own
// part of a buffer several times larger than the last-level cache.
double measure_memory_bandwidth_gbs(int threads, probe_clock clock = probe_clock::wall);
// Peak of the FMA units in GFLOP/s (2 flops per multiply-add): independent FMA chains held in
// registers, no memory traffic; what no GEMM can exceed with f32 arithmetic.
double measure_fma_peak_gflops(isa which, int threads, probe_clock clock = probe_clock::wall);
// The f32 GEMM rate this library reaches on a compute-bound shape (y[M,N] = x[M,K]·w[N,K]ᵀ,
// N split over the threads), in GFLOP/s.
double measure_gemm_gflops(isa which, int threads, int64_t M = 256, int64_t N = 2048,
                           int64_t K = 2048, probe_clock clock = probe_clock::wall);

}  // namespace llmq::kernels

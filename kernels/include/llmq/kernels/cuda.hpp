// CUDA kernels: host functions that enqueue one kernel (or two) on a stream and return. No
// runtime types, no allocation, no synchronisation: every pointer named "device" below is
// device memory of the current device, every call is stream-ordered on `stream`, and the
// returned cudaError_t is the launch's (cudaGetLastError right after it; cudaErrorInvalidValue
// for an element type the kernel does not take). Errors of the kernel itself surface later,
// at the stream's next synchronisation, as with any CUDA launch.
//
// The caller validates shapes and index tables (as with the CPU kernels in cpu.hpp); kernels
// that follow an index table still check each entry against the bounds they are given and
// write NaN (or skip) instead of reading or writing outside them.
//
// Element types: `act` is the activation type, f32, f16 or bf16 (dtype from cpu.hpp, same
// numbering as llmq_dtype). Arithmetic is f32 inside every kernel; results are rounded to the
// output type once, to nearest even. Norm weights and biases are f32. Row strides ("ld") are
// in elements unless they say bytes.
//
// Built with nvcc for sm_80 and sm_90 (plus compute_90 PTX); none of this has run on a GPU in
// the session that wrote it (see docs/cuda.md).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "llmq/kernels/cpu.hpp"  // dtype, q8_0 block constants

namespace llmq::kernels::cuda {

// ------------------------------------------------------------------ devices

// How many CUDA devices this process sees (after CUDA_VISIBLE_DEVICES). Returns 0 and sets
// `why` (e.g. "cudaGetDeviceCount: no CUDA-capable device is detected") when there is none or
// the driver is missing, so a caller can log or skip with the reason. Host only, any thread.
int visible_device_count(std::string* why);

// ------------------------------------------------------------------ element-wise

// out[i, :] = row tokens[i] - vocab_begin of `table` (table_t f32, f16, bf16, q8_0, q4_0,
// q4_k, q5_k or q6_k; `vocab`
// rows of `n` values, row stride ld_bytes), converted to act; out row stride n. A token
// outside [vocab_begin, vocab_begin + vocab) gives a row of zeros: another tensor rank holds
// it (the caller checked every id against the whole vocabulary). tokens: device, `count`.
cudaError_t embedding_gather(dtype table_t, const void* table, int64_t ld_bytes, int64_t vocab_begin,
                             int64_t vocab, const int32_t* tokens, int64_t count, int64_t n, dtype act,
                             void* out, cudaStream_t stream);

// y += x over n values (a residual add that is not followed by a norm).
cudaError_t add(dtype act, void* y, const void* x, int64_t n, cudaStream_t stream);
// y += scale * x over n values (the tanh-gated residuals of mllama's cross-attention layers).
cudaError_t scaled_add(dtype act, void* y, const void* x, float scale, int64_t n, cudaStream_t stream);

// y = x / sqrt(mean(x²) + eps) * weight, row by row (rows of n, stride n; y may equal x).
cudaError_t rms_norm(dtype act, const void* x, const float* weight, void* y, int64_t rows,
                     int64_t n, float eps, cudaStream_t stream);

// The residual add fused with the next RMSNorm: residual += delta (in place, rounded to act),
// then normed = rms_norm(residual) * weight, from the rounded residual. Rows of n, stride n.
cudaError_t add_rms_norm(dtype act, void* residual, const void* delta, const float* weight,
                         void* normed, int64_t rows, int64_t n, float eps, cudaStream_t stream);

// RoPE fused with the KV-cache write, for `tokens` tokens of one layer:
//   q: [tokens][num_heads][head_dim] act, rotated in place;
//   k, v: [tokens][num_kv_heads][head_dim] act, read; k is rotated on its way into the cache;
//   k_cache, v_cache: [num_slots][num_kv_heads][head_dim] of kv_t (f32, f16 or bf16), i.e. the
//     paged cache's blocks back to back (slot = block * block_size + offset);
//   positions, slots: device, one per token; slot < 0 skips the token's write, a slot >=
//     num_slots is skipped too; slots == NULL (with num_kv_heads == 0) rotates q only.
// Angles as kernels::rope (freq_i = freq_scale * pos * theta^(-2i/d), in double, divided by
// freq_factors[i] when freq_factors is set: GGUF's rope_freqs, [head_dim / 2] f32 in device
// memory); pairs (i, i + d/2) when neox, else (2i, 2i + 1). head_dim even, at most 1024.
struct rope_kv_write_args {
    dtype act;
    void* q;
    const void* k;
    const void* v;
    dtype kv_t;
    void* k_cache;
    void* v_cache;
    const int32_t* positions;
    const int64_t* slots;
    int64_t num_slots;
    int64_t tokens;
    int32_t num_heads;
    int32_t num_kv_heads;
    int32_t head_dim;
    float theta;
    float freq_scale;
    bool neox;
    const float* freq_factors;  // device, [head_dim / 2], or NULL
};
cudaError_t rope_kv_write(const rope_kv_write_args& args, cudaStream_t stream);

// RoPE alone, in place on x: [tokens][heads][head_dim] act, token t at positions[t] (device);
// freq_factors as in rope_kv_write_args.
cudaError_t rope(dtype act, void* x, int64_t tokens, int32_t heads, int32_t head_dim, const int32_t* positions,
                 float theta, float freq_scale, bool neox, cudaStream_t stream,
                 const float* freq_factors = nullptr);

// The KV-cache write alone: row t of k and v (row_values act values each) to slot slots[t] of
// the caches ([num_slots][row_values] of kv_t); slots outside [0, num_slots) are skipped.
cudaError_t kv_write(dtype act, const void* k, const void* v, dtype kv_t, void* k_cache, void* v_cache,
                     const int64_t* slots, int64_t num_slots, int64_t tokens, int64_t row_values,
                     cudaStream_t stream);

// out[r, i] = silu(gate[r, i]) * up[r, i] for rows r < rows, i < n; gate and up rows have
// stride ld_in (they may be the two halves of one fused gate|up row), out rows stride ld_out.
cudaError_t swiglu(dtype act, const void* gate, const void* up, int64_t ld_in, void* out,
                   int64_t ld_out, int64_t rows, int64_t n, cudaStream_t stream);

// y[r, i] += bias[i] for rows r < rows, i < n; y rows have stride ld.
cudaError_t bias_add(dtype act, void* y, int64_t ld, const float* bias, int64_t rows, int64_t n,
                     cudaStream_t stream);

// out[i, :] = x[rows[i], :] converted from in_t to out_t (any of f32, f16, bf16), for the
// logit rows of a batch (the last token of each sequence). x has `x_rows` rows of n, stride
// ld_x; out stride n; rows: device, `count` entries; a row outside [0, x_rows) gives NaN.
cudaError_t gather_rows(dtype in_t, const void* x, int64_t ld_x, int64_t x_rows,
                        const int32_t* rows, int64_t count, int64_t n, dtype out_t, void* out,
                        cudaStream_t stream);

// y[i] = x[i] converted from in_t to out_t (f32, f16, bf16) over n values, rounded to nearest
// even: a GEMM's input in the weight's type.
cudaError_t convert(dtype in_t, const void* x, dtype out_t, void* y, int64_t n, cudaStream_t stream);

// y[i] = sum over r < count of rows[r * stride + i], added in r order in f32 over n f32
// values, so that every caller summing the same rows gets the same bits (the device-memory
// all-reduce: row r is rank r's contribution). y must not overlap rows.
cudaError_t sum_rows_in_order(const float* rows, int32_t count, int64_t stride, float* y, int64_t n,
                              cudaStream_t stream);

// ------------------------------------------------------------------ Q8_0 GEMM helpers

// y[m, n] = sum_k x[m, k] * w[n, k] for a Q8_0 w, reading the blocks directly: one warp per
// output column, each lane two values of one of two blocks per step, all M rows at once.
// For decode (M <= q8_0_gemv_max_rows). x: act, M rows of K, stride ldx; w: N rows of K/32
// blocks, row stride ldw_bytes (even); y: y_t (f32, f16, bf16), stride ldy. K % 32 == 0.
inline constexpr int64_t q8_0_gemv_max_rows = 16;
cudaError_t q8_0_gemv(dtype act, const void* x, int64_t M, int64_t K, int64_t ldx,
                      const void* w, int64_t ldw_bytes, int64_t N, dtype y_t, void* y,
                      int64_t ldy, cudaStream_t stream);

// out[r, :] = the values of Q8_0 row r of w (rows of K values, stride ldw_bytes), as out_t
// (f32, f16, bf16), stride ld_out. For the tiles a larger-M GEMM hands to cuBLASLt.
cudaError_t q8_0_dequantize(const void* w, int64_t ldw_bytes, int64_t rows, int64_t K,
                            dtype out_t, void* out, int64_t ld_out, cudaStream_t stream);

// ------------------------------------------------------------------ Q4_0 / K-quant GEMM helpers

// The same two for weights of q4_0, q4_k, q5_k or q6_k (w_t; block_quant_gemm_type says
// which): y[m, n] = sum_k x[m, k] * w[n, k] reading the blocks directly, one warp per output
// column, for M <= block_quant_gemv_max_rows; and rows of w dequantized to out_t for
// cuBLASLt. Values are decoded by the format's definition (block_quant_values.cuh). K a
// multiple of the block's values (32 for q4_0, 256 for the K-quants); no alignment needed.
inline constexpr int64_t block_quant_gemv_max_rows = 16;
bool block_quant_gemm_type(dtype t);
cudaError_t block_quant_gemv(dtype w_t, dtype act, const void* x, int64_t M, int64_t K, int64_t ldx,
                             const void* w, int64_t ldw_bytes, int64_t N, dtype y_t, void* y,
                             int64_t ldy, cudaStream_t stream);
cudaError_t block_quant_dequantize(dtype w_t, const void* w, int64_t ldw_bytes, int64_t rows,
                                   int64_t K, dtype out_t, void* out, int64_t ld_out,
                                   cudaStream_t stream);

// ------------------------------------------------------------------ paged attention

// Causal attention over the paged KV cache, same contract as llmq_attention_args (see
// plugins/llmq_plugin.h, "GPU contract"): q and out [num_tokens][num_heads][head_dim] of
// act; caches [num_blocks][block_size][num_kv_heads][head_dim] of kv_t (f32, f16, bf16);
// query_start, context_len and block_tables in device memory.
//
// One thread block per (sequence, tile of query rows, KV head, split): a tile is up to
// paged_attention_tile_rows (token, head) rows of the KV head's query group, so grouped-query
// heads share every K/V tile they load; K/V stream through shared memory 32 positions at a
// time with an online softmax (never a whole score row). The grid covers the worst case from
// the scalars alone (num_tokens tiles per sequence, the splits asked for); blocks past a
// sequence's rows or context return at once. With splits > 1 (the caller's choice; attention-
// cuda's policy is in its attention_cuda_arguments.hpp) every sequence's context is cut
// into `splits` contiguous chunks whose partial results (max, sum, weighted values) go to
// `workspace` and a second kernel combines them (for decode over long contexts).
// head_dim 64 or 128. A block id outside [0, num_blocks) makes that sequence's rows NaN.
inline constexpr int32_t paged_attention_tile_rows = 16;
struct paged_attention_args {
    dtype act;
    const void* q;
    void* out;
    dtype kv_t;
    const void* k_cache;
    const void* v_cache;
    const int32_t* query_start;
    const int32_t* context_len;
    const int32_t* block_tables;
    int32_t num_seqs;
    int32_t num_tokens;
    int32_t num_heads;
    int32_t num_kv_heads;
    int32_t head_dim;
    int32_t block_size;
    int32_t max_blocks_per_seq;
    int32_t num_blocks;
    float scale;
};
// Floats of workspace that paged_attention needs for `splits` (0 for splits == 1).
int64_t paged_attention_workspace_floats(int32_t num_tokens, int32_t num_heads, int32_t head_dim,
                                         int32_t splits);
cudaError_t paged_attention(const paged_attention_args& args, int32_t splits, float* workspace,
                            cudaStream_t stream);

}  // namespace llmq::kernels::cuda

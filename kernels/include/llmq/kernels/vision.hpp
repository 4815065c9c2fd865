// CPU kernels of a vision transformer (ViT) that the text path lacks: the patch embedding,
// LayerNorm with a bias, the two GELUs, bidirectional attention and the gated residual.
//
// The two heavy ones are built on the text path's kernels, not copies of them: the patch
// embedding is an im2col into the f32 GEMM (kernels::gemm, every weight type it takes), and
// bidirectional attention is the paged attention kernel with each query row given the whole
// sequence as its context. Like every kernel in cpu.hpp they are plain functions over pointers
// with a range of their outermost parallel dimension, reentrant, with no state between calls.
#pragma once

#include <cstdint>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels {

// ------------------------------------------------------------------ patch embedding

// A Conv2d with kernel = stride = patch and no padding, as every ViT's patch embedding:
//   pixels:  [channels][height][width] f32 (planar, normalised)
//   weight:  [dim][channels * patch * patch] of wt (PyTorch's [dim][channels][patch][patch]
//            flattened), row stride ldw BYTES; f32, f16, bf16 or any type gemm() takes
//   out:     [grid_h * grid_w][dim] f32, patch (py, px) at row py * grid_w + px
//   columns: scratch of patch_embedding_scratch_floats(...) floats (the im2col matrix)
// grid_h = height / patch, grid_w = width / patch; pixels past the last whole patch are not
// read (as PyTorch's Conv2d). Patch rows [row_begin, row_end) only; their im2col rows are built
// in `columns` and multiplied there, so ranges may run on different threads with disjoint
// scratch. No bias (CLIP's has none; add one with add_bias_rows).
int64_t patch_embedding_scratch_floats(int32_t channels, int32_t patch, int64_t rows);
void patch_embedding(isa which, const float* pixels, int32_t channels, int32_t height, int32_t width,
                     int32_t patch, const void* weight, dtype wt, int64_t ldw, int64_t dim,
                     float* out, float* columns, int64_t row_begin, int64_t row_end);

// ------------------------------------------------------------------ norms and activations

// y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias per row of n values (the biased
// variance, as torch.nn.LayerNorm); bias may be null (none). y may equal x. Two passes: the
// mean, then the centred sum of squares, both accumulated in double.
void layer_norm_rows(const float* x, const float* weight, const float* bias, float* y, int64_t rows,
                     int64_t n, float eps);
// x += bias per row (a linear layer's bias).
void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n);
// In place over n values. gelu_erf: x/2 * (1 + erf(x / sqrt 2)) (torch's GELU, "gelu" in
// Hugging Face configs; the scalar ISA by std::erf, the vector ones by a polynomial with
// |erf error| <= 1.5e-7 and its exponential). gelu_quick: x * sigmoid(1.702 x) (OpenAI CLIP's
// "quick_gelu").
void gelu_erf(isa which, float* x, int64_t n);
void gelu_quick(float* x, int64_t n);
// y += tanh(gate) * x over n values: the gated residual of Llama 3.2 Vision's global encoder
// layers and cross-attention layers (gate is the layer's scalar parameter).
void gated_add(float* y, const float* x, float gate, int64_t n);

// ------------------------------------------------------------------ attention

// Bidirectional (non-causal) multi-head attention of one sequence of `tokens` rows:
//   q, k, v, out: [tokens][heads][head_dim] f32, contiguous; out = softmax(q kᵀ * scale) v
//   key_len: optional [tokens]; when not null, query row t sees only keys 0 .. key_len[t] - 1
//            (each at least 1, at most tokens): the padding mask of a batch of images of
//            different sizes, or of tiles of which only the first are real. Null: every key.
// Runs kernels::paged_attention with every query row a one-token "sequence" whose context is
// the whole block of keys, so it has that kernel's accuracy and vector paths. Work items
// [item_begin, item_end) of tokens * heads (item = t * heads + h), so ranges may run on
// different threads. indices: the tables the paged kernel reads, filled once per call sequence
// by bidirectional_attention_indices (bidirectional_attention_index_ints(tokens) int32) and
// only read here. head_dim <= paged_attention_max_head_dim.
int64_t bidirectional_attention_index_ints(int32_t tokens);
void bidirectional_attention_indices(int32_t tokens, const int32_t* key_len, int32_t* indices);
void bidirectional_attention(isa which, const float* q, const float* k, const float* v, float* out,
                             int32_t tokens, int32_t heads, int32_t head_dim, float scale,
                             const int32_t* indices, int64_t item_begin, int64_t item_end);

}  // namespace llmq::kernels

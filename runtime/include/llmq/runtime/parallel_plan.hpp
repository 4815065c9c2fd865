// How a model is split over a device group: `tensor` ranks inside each of `pipeline`
// stages, each stage a contiguous range of layers.
//
// Tensor parallelism (Megatron): Q/K/V and gate/up are split by output rows (attention
// heads, FFN columns), the attention output and down projections by input columns, and one
// all-reduce follows each of those two. KV heads are split when they divide by the ranks
// and replicated (each rank keeps the one its query heads read) when there are fewer KV
// heads than ranks. Embedding and LM head are both vocabulary-parallel: each rank holds
// ceil(vocab / tensor) rows; the embedding lookup is masked to the rank's rows and summed by
// an all-reduce, the LM head's slices are all-gathered. So every rank holds 1/tensor of every
// weight but the norms, and no rank holds a replicated 2 GiB embedding of a 128k vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct ParallelPlan {
    int32_t tensor = 1;
    int32_t pipeline = 1;
    // Stage s holds layers [stage_layers[s], stage_layers[s + 1]); pipeline + 1 entries.
    std::vector<int32_t> stage_layers;

    int32_t devices() const { return tensor * pipeline; }
    // Device position in the group of (stage, tensor rank): stage-major.
    int32_t device_of(int32_t stage, int32_t rank) const { return stage * tensor + rank; }
};

// Can this model be split `tensor` ways? ok, or the reason naming the head counts.
[[nodiscard]] Status check_tensor_split(const LlamaLayout& layout, int32_t tensor);
// Layer ranges for `pipeline` stages: contiguous, at least one layer each, and balanced by
// bytes. A stage costs what its largest tensor rank holds: the weights of its layers (the
// first stage adds its embedding slice, the last its LM-head slice and the final norm) plus
// `kv_head_bytes` per layer and KV head of the rank (the KV cache the plan must fit, e.g.
// one full-context sequence; 0 balances weights alone). The split minimises the largest
// stage cost exactly; among the splits that reach it, the one whose stage costs have the
// smallest sum of squares. The memory planner makes the split and the executor runs the
// plan it is given, so both always use this one. Errors: a tensor split the head counts do
// not allow, pipeline < 1 or pipeline > n_layer.
[[nodiscard]] Expected<ParallelPlan> make_parallel_plan(const LlamaLayout& layout, int32_t tensor,
                                                        int32_t pipeline,
                                                        uint64_t kv_head_bytes = 0);

// The slices one tensor rank holds.
struct TensorSlice {
    int32_t head_begin, head_end;  // query heads
    int32_t kv_begin, kv_end;      // KV heads
    int32_t ff_begin, ff_end;      // FFN columns
    int32_t vocab_begin, vocab_end;
    int32_t vocab_padded;          // ceil(n_vocab / tensor): every rank's LM-head row count
};
TensorSlice tensor_slice(const LlamaHParams& hp, int32_t tensor, int32_t rank);

// The bytes of weights tensor rank `rank` of `tensor` holds (the one byte model of the
// planner and the balancer): of layer `layer`; of the embedding (on the first stage); of the
// LM head and the final norm (on the last stage; a head tied to the embedding costs nothing
// more when the last stage is the first, and a copy of its slice otherwise).
uint64_t rank_layer_bytes(const LlamaLayout& layout, int32_t tensor, int32_t rank, int32_t layer);
uint64_t rank_embedding_bytes(const LlamaLayout& layout, int32_t tensor, int32_t rank);
uint64_t rank_lm_head_bytes(const LlamaLayout& layout, int32_t tensor, int32_t rank,
                            bool on_first_stage);

}  // namespace llmq

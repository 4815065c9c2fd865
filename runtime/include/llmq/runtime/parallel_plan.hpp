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
// Layer ranges for `pipeline` stages, balanced by bytes (the first stage also holds the
// embedding slice, the last the LM head). Requires pipeline <= n_layer.
[[nodiscard]] Expected<ParallelPlan> make_parallel_plan(const LlamaLayout& layout, int32_t tensor,
                                                        int32_t pipeline);

// The slices one tensor rank holds.
struct TensorSlice {
    int32_t head_begin, head_end;  // query heads
    int32_t kv_begin, kv_end;      // KV heads
    int32_t ff_begin, ff_end;      // FFN columns
    int32_t vocab_begin, vocab_end;
    int32_t vocab_padded;          // ceil(n_vocab / tensor): every rank's LM-head row count
};
TensorSlice tensor_slice(const LlamaHParams& hp, int32_t tensor, int32_t rank);

}  // namespace llmq

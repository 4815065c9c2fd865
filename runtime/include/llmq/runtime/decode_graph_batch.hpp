// Decode micro-batches in the shape a recorded CUDA graph replays (the bucket logic of
// [cuda] graphs). A graph bakes in every pointer and every scalar of the step it recorded,
// so steps of different sizes share a graph only when they are padded to the same shape:
//   - sequences: the next power of two at or above the batch's, capped at max_rows (the
//     workspace's rows), which is then a bucket of its own;
//   - block-table width (max_blocks): the next power of two at or above the batch's.
// Padded sequences carry token 0 at position 0 with a context of 1 and a block table of -1s:
// their KV write goes to a negative slot, which the kernels skip, and attention turns their
// rows into NaN (an out-of-range block id), which stays in those rows (every op after is row
// by row) and never reaches the host (only the real sequences' logit rows are copied).
// Real sequences keep their values; their extra block-table columns are -1 and never read
// (attention reads only the blocks of each context).
#pragma once

#include <cstdint>

#include "llmq/runtime/model_shard.hpp"

namespace llmq {

struct DecodeGraphShape {
    int32_t seqs = 0;   // padded sequences (= tokens)
    int32_t width = 0;  // padded block-table width
    // Graphs are kept per key: one per (seqs, width).
    uint64_t key() const { return (static_cast<uint64_t>(seqs) << 32) | static_cast<uint32_t>(width); }
};

// Whether `b` is a decode batch a graph can replay: at least one sequence, one token per
// sequence (query_start[s] = s), logits wanted for every row in order (logit_rows[s] = s),
// no image rows, at most max_rows sequences.
bool is_graph_decode_batch(const MicroBatch& b, int32_t max_rows);

// The padded shape of such a batch.
DecodeGraphShape decode_graph_shape(const MicroBatch& b, int32_t max_rows);

// `out` = `b` padded to `shape` as described above (logits_offset kept). `out`'s vectors are
// reused from call to call.
void pad_decode_batch(const MicroBatch& b, const DecodeGraphShape& shape, MicroBatch& out);

}  // namespace llmq

// How many micro-batches a pipelined step is cut into.
//
// With P stages and M micro-batches, a step takes (M + P - 1) micro-batch times: the first
// micro-batch crosses every stage before the last one starts on the last stage. One
// micro-batch's time on a stage is about "read the stage's weights once" plus "its tokens'
// share of the FLOPs": a small-M GEMM reads each weight once for all of its rows, so on a CPU
// a weight read costs about as much as `knee_tokens` rows of compute (the M sweep of
// bench_kernels: 1 row 0.163 ms, 8 rows 0.288 ms for a 2048 x 2048 F16 matrix, so about 8-9
// rows per weight read). The step costs about (M + P - 1) x (knee + tokens / M), and the count
// that minimises it is chosen: many micro-batches for a prefill (compute-bound: the bubble
// shrinks as 1 / M), one for a small decode step (every extra micro-batch reads the weights
// again, and 8 decode rows are worth less than one read). Micro-batches are whole sequences,
// so there are at most `sequences` of them.
#pragma once

#include <algorithm>
#include <cstdint>

namespace llmq {

inline int32_t pipeline_micro_batches(int32_t stages, int32_t sequences, int64_t tokens, double knee_tokens = 8.0) {
    if (stages <= 1 || sequences <= 1 || tokens <= 1) return 1;
    const int32_t most = std::min<int32_t>(sequences, 64);
    int32_t best = 1;
    double best_cost = 0;
    for (int32_t m = 1; m <= most; ++m) {
        const double cost = double(m + stages - 1) * (knee_tokens + double(tokens) / m);
        if (m == 1 || cost < best_cost) {
            best = m;
            best_cost = cost;
        }
    }
    return best;
}

}  // namespace llmq

// Scalar reference paged attention: one query row at a time, one cache block at a time,
// online softmax (running max m, running sum l, running weighted sum acc):
//   for each block: s_j = scale * q·k_j for the block's visible slots, m' = max(m, max s_j),
//   acc = acc * e^(m - m') + sum_j e^(s_j - m') v_j,  l = l * e^(m - m') + sum_j e^(s_j - m')
// and out = acc / l at the end. Scores of one block at most are held at a time.
#include <cmath>
#include <vector>

#include "float16_conversion.hpp"
#include "reference_kernels.hpp"

namespace llmq::kernels::reference {
namespace {

const uint8_t* slot_of(const void* cache, dtype t, const paged_attention_params& p,
                       int64_t block, int64_t slot, int64_t kv_head) {
    const int64_t element = (block * p.block_size + slot) * p.num_kv_heads * p.head_dim +
                            kv_head * p.head_dim;
    return static_cast<const uint8_t*>(cache) + element * (t == dtype::f16 ? 2 : 4);
}

float element(const uint8_t* base, dtype t, int64_t i) {
    if (t == dtype::f16) return scalar_float16::half_to_float(reinterpret_cast<const uint16_t*>(base)[i]);
    return reinterpret_cast<const float*>(base)[i];
}

}  // namespace

void paged_attention(const paged_attention_params& p, int64_t item_begin, int64_t item_end) {
    const int64_t D = p.head_dim;
    const int64_t group = p.num_heads / p.num_kv_heads;
    std::vector<float> acc(D), scores(p.block_size);
    for (int64_t item = item_begin; item < item_end; ++item) {
        const int64_t s = item / p.num_heads;
        const int64_t h = item % p.num_heads;
        const int64_t kv_head = h / group;
        const int64_t rows = p.query_start[s + 1] - p.query_start[s];
        const int64_t first_position = p.context_len[s] - rows;
        const int32_t* table = p.block_tables + s * p.max_blocks_per_seq;
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t token = p.query_start[s] + r;
            const int64_t position = first_position + r;
            const float* q = p.q + (token * p.num_heads + h) * D;
            float m = -INFINITY, l = 0.0f;
            for (int64_t i = 0; i < D; ++i) acc[i] = 0.0f;
            // Keys before `oldest` are outside the sliding window (none without one).
            const int64_t oldest = p.sliding_window > 0 ? position - p.sliding_window + 1 : 0;
            for (int64_t b = 0; b * p.block_size <= position; ++b) {
                const int64_t visible =
                    position - b * p.block_size + 1 < p.block_size ? position - b * p.block_size + 1
                                                                   : p.block_size;
                const int64_t first = oldest - b * p.block_size > 0 ? oldest - b * p.block_size : 0;
                if (first >= visible) continue;
                float block_max = -INFINITY;
                for (int64_t j = first; j < visible; ++j) {
                    const uint8_t* k = slot_of(p.k_cache, p.kv_dtype, p, table[b], j, kv_head);
                    float dot = 0.0f;
                    for (int64_t i = 0; i < D; ++i) dot += q[i] * element(k, p.kv_dtype, i);
                    scores[j] = dot * p.scale;
                    block_max = scores[j] > block_max ? scores[j] : block_max;
                }
                const float new_max = block_max > m ? block_max : m;
                const float correction = std::exp(m - new_max);  // 0 on the first block
                l *= correction;
                for (int64_t i = 0; i < D; ++i) acc[i] *= correction;
                for (int64_t j = first; j < visible; ++j) {
                    const float weight = std::exp(scores[j] - new_max);
                    l += weight;
                    const uint8_t* v = slot_of(p.v_cache, p.kv_dtype, p, table[b], j, kv_head);
                    for (int64_t i = 0; i < D; ++i) acc[i] += weight * element(v, p.kv_dtype, i);
                }
                m = new_max;
            }
            float* out = p.out + (token * p.num_heads + h) * D;
            for (int64_t i = 0; i < D; ++i) out[i] = acc[i] / l;
        }
    }
}

}  // namespace llmq::kernels::reference

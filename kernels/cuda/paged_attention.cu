// Paged attention for a batch that mixes prefill and decode (contract in cuda.hpp).
//
// Block (sequence s, tile t, KV head g, split c), 4 warps, 16 query rows: row r of the
// sequence's query group is (token r / group, head g * group + r % group), so the heads that
// share KV head g share every K/V tile. Per 32 KV positions:
//   1. all 128 threads copy K and V of the positions into shared memory as f32 (K rows padded
//      by one float: lane j reads K[j][d], banks (j + d) % 32, no conflicts);
//   2. each warp takes its 4 rows; for a row, lane j scores position j (dot of the row's q,
//      broadcast from shared memory, with K[j]), the warp takes the tile's max and sum
//      (online softmax: m, l and the lane's slice of the output rescaled by exp(m_old - m));
//      then every lane adds sum_j p_j V[j][d] for its dims d = lane + 32 i.
// The scores of one tile live in registers only; no row of the score matrix is ever stored.
// Splits cut each sequence's context into chunks (multiples of 32); each split writes its
// unnormalised output and (m, l) to the workspace and combine_kernel merges them.
#include <cmath>

#include "device_types.cuh"
#include "llmq/kernels/cuda.hpp"

namespace llmq::kernels::cuda {
namespace {

constexpr int kv_tile = 32;
constexpr int warps = 4;
constexpr int rows_per_warp = paged_attention_tile_rows / warps;

struct launch_shape {
    int32_t group;        // query heads per KV head
    int32_t tiles;        // tiles per sequence in the grid (worst case)
    int32_t splits;
};

template <int D, typename KVT>
__global__ void __launch_bounds__(warps * 32)
    attention_kernel(paged_attention_args a, launch_shape shape, float* __restrict__ workspace) {
    constexpr int R = paged_attention_tile_rows;
    constexpr int per_lane = D / 32;
    __shared__ float q_tile[R][D];
    __shared__ float k_tile[kv_tile][D + 1];
    __shared__ float v_tile[kv_tile][D];
    __shared__ int bad_table;

    const int32_t s = int32_t(blockIdx.x / unsigned(shape.tiles));
    const int32_t tile = int32_t(blockIdx.x % unsigned(shape.tiles));
    const int32_t g = int32_t(blockIdx.y);
    const int32_t split = int32_t(blockIdx.z);
    const int32_t q_begin = a.query_start[s];
    const int32_t q_count = a.query_start[s + 1] - q_begin;
    const int32_t context = a.context_len[s];
    const int32_t row_begin = tile * R;
    if (q_count <= 0 || row_begin >= q_count * shape.group) return;
    const int32_t rows = min(R, q_count * shape.group - row_begin);
    const int32_t first_position = context - q_count;  // of the sequence's first query row

    // The chunk of KV positions of this split, cut to what the tile's last row may see.
    const int32_t chunk = ((context + shape.splits - 1) / shape.splits + kv_tile - 1) / kv_tile * kv_tile;
    const int32_t kv_begin = split * chunk;
    const int32_t last_visible = first_position + (row_begin + rows - 1) / shape.group;
    const int32_t kv_end = min(kv_begin + chunk, last_visible + 1);

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    if (tid == 0) bad_table = 0;
    for (int e = tid; e < R * D; e += blockDim.x) {
        const int r = e / D, d = e % D;
        float v = 0.0f;
        if (r < rows) {
            const int32_t row = row_begin + r;
            const int64_t token = q_begin + row / shape.group;
            const int32_t head = g * shape.group + row % shape.group;
            v = detail::load(a.act, a.q, (token * a.num_heads + head) * D + d) * a.scale;
        }
        q_tile[r][d] = v;
    }

    float m[rows_per_warp], l[rows_per_warp], acc[rows_per_warp][per_lane];
#pragma unroll
    for (int i = 0; i < rows_per_warp; ++i) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < per_lane; ++j) acc[i][j] = 0.0f;
    }

    const int32_t* table = a.block_tables + int64_t(s) * a.max_blocks_per_seq;
    const auto* k_cache = static_cast<const KVT*>(a.k_cache);
    const auto* v_cache = static_cast<const KVT*>(a.v_cache);
    for (int32_t p0 = kv_begin; p0 < kv_end; p0 += kv_tile) {
        __syncthreads();  // the previous tile is consumed (and q_tile is written, first time)
        for (int e = tid; e < kv_tile * D; e += blockDim.x) {
            const int j = e / D, d = e % D;
            const int32_t p = p0 + j;
            float kv_k = 0.0f, kv_v = 0.0f;
            if (p < kv_end) {
                const int32_t index = p / a.block_size;
                const int32_t block = index < a.max_blocks_per_seq ? table[index] : -1;
                if (block < 0 || block >= a.num_blocks) {
                    bad_table = 1;
                } else {
                    const int64_t at = ((int64_t(block) * a.block_size + p % a.block_size) * a.num_kv_heads + g) * D + d;
                    kv_k = detail::to_float(k_cache[at]);
                    kv_v = detail::to_float(v_cache[at]);
                }
            }
            k_tile[j][d] = kv_k;
            v_tile[j][d] = kv_v;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < rows_per_warp; ++i) {
            const int r = warp * rows_per_warp + i;
            if (r >= rows) break;  // uniform across the warp
            const int32_t visible = first_position + (row_begin + r) / shape.group;  // last position it sees
            const int32_t p = p0 + lane;
            const bool valid = p < kv_end && p <= visible;
            float score = -INFINITY;
            if (valid) {
                float dot = 0.0f;
#pragma unroll 16
                for (int d = 0; d < D; ++d) dot = fmaf(q_tile[r][d], k_tile[lane][d], dot);
                score = dot;
            }
            const float tile_max = detail::warp_max(score);
            const float m_new = fmaxf(m[i], tile_max);
            if (m_new == -INFINITY) continue;  // nothing visible yet
            const float weight = valid ? __expf(score - m_new) : 0.0f;
            const float rescale = __expf(m[i] - m_new);  // 0 when m[i] was -inf
            l[i] = l[i] * rescale + detail::warp_sum(weight);
            m[i] = m_new;
#pragma unroll
            for (int j = 0; j < per_lane; ++j) acc[i][j] *= rescale;
#pragma unroll 8
            for (int jj = 0; jj < kv_tile; ++jj) {
                const float pj = __shfl_sync(0xffffffffu, weight, jj);
#pragma unroll
                for (int j = 0; j < per_lane; ++j) acc[i][j] = fmaf(pj, v_tile[jj][lane + 32 * j], acc[i][j]);
            }
        }
    }
    __syncthreads();
    const bool bad = bad_table != 0;

#pragma unroll
    for (int i = 0; i < rows_per_warp; ++i) {
        const int r = warp * rows_per_warp + i;
        if (r >= rows) break;
        const int32_t row = row_begin + r;
        const int64_t token = q_begin + row / shape.group;
        const int32_t head = g * shape.group + row % shape.group;
        const int64_t out_row = (token * a.num_heads + head) * D;
        if (shape.splits == 1) {
            const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
            for (int j = 0; j < per_lane; ++j)
                detail::store(a.act, a.out, out_row + lane + 32 * j, bad ? NAN : acc[i][j] * inv);
        } else {
            float* partial = workspace + int64_t(split) * a.num_tokens * a.num_heads * D;
#pragma unroll
            for (int j = 0; j < per_lane; ++j) partial[out_row + lane + 32 * j] = bad ? NAN : acc[i][j];
            if (lane == 0) {
                float* ml = workspace + int64_t(shape.splits) * a.num_tokens * a.num_heads * D +
                            (int64_t(split) * a.num_tokens * a.num_heads + token * a.num_heads + head) * 2;
                ml[0] = bad ? 0.0f : m[i];
                ml[1] = bad ? 1.0f : l[i];
            }
        }
    }
}

// One block per (token, head), one thread per dim: out = sum_c acc_c e^(m_c - M) / sum_c l_c e^(m_c - M).
__global__ void combine_kernel(paged_attention_args a, int32_t splits, const float* __restrict__ workspace) {
    const int64_t row = blockIdx.x;  // token * num_heads + head
    const int d = threadIdx.x;
    const int64_t plane = int64_t(a.num_tokens) * a.num_heads;
    const float* ml = workspace + int64_t(splits) * plane * a.head_dim;
    float top = -INFINITY;
    for (int32_t c = 0; c < splits; ++c) top = fmaxf(top, ml[(c * plane + row) * 2]);
    float sum = 0.0f, value = 0.0f;
    for (int32_t c = 0; c < splits; ++c) {
        const float mc = ml[(c * plane + row) * 2], lc = ml[(c * plane + row) * 2 + 1];
        if (lc == 0.0f) continue;  // this split saw nothing of the row (its acc is 0 too)
        const float w = __expf(mc - top);
        sum += lc * w;
        value += workspace[(c * plane + row) * a.head_dim + d] * w;
    }
    detail::store(a.act, a.out, row * a.head_dim + d, value / sum);
}

template <int D, typename KVT>
cudaError_t launch(const paged_attention_args& a, const launch_shape& shape, float* workspace, cudaStream_t stream) {
    const dim3 grid(unsigned(int64_t(a.num_seqs) * shape.tiles), unsigned(a.num_kv_heads), unsigned(shape.splits));
    attention_kernel<D, KVT><<<grid, warps * 32, 0, stream>>>(a, shape, workspace);
    return detail::launched();
}

template <int D>
cudaError_t launch_head_dim(const paged_attention_args& a, const launch_shape& shape, float* workspace,
                            cudaStream_t stream) {
    switch (a.kv_t) {
        case dtype::f16: return launch<D, __half>(a, shape, workspace, stream);
        case dtype::bf16: return launch<D, __nv_bfloat16>(a, shape, workspace, stream);
        case dtype::f32: return launch<D, float>(a, shape, workspace, stream);
        default: return cudaErrorInvalidValue;
    }
}

}  // namespace

int64_t paged_attention_workspace_floats(int32_t num_tokens, int32_t num_heads, int32_t head_dim, int32_t splits) {
    if (splits <= 1) return 0;
    return int64_t(splits) * num_tokens * num_heads * (int64_t(head_dim) + 2);
}

cudaError_t paged_attention(const paged_attention_args& a, int32_t splits, float* workspace, cudaStream_t stream) {
    if (!detail::is_activation(a.act) || a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0 || splits < 1 ||
        splits > 65535 || a.num_kv_heads > 65535 || (splits > 1 && workspace == nullptr))
        return cudaErrorInvalidValue;
    if (a.num_seqs <= 0 || a.num_tokens <= 0) return cudaSuccess;
    launch_shape shape{};
    shape.group = a.num_heads / a.num_kv_heads;
    shape.tiles = int32_t((int64_t(a.num_tokens) * shape.group + paged_attention_tile_rows - 1) /
                          paged_attention_tile_rows);
    shape.splits = splits;
    if (int64_t(a.num_seqs) * shape.tiles > 0x7fffffff) return cudaErrorInvalidValue;
    cudaError_t status;
    switch (a.head_dim) {
        case 64: status = launch_head_dim<64>(a, shape, workspace, stream); break;
        case 128: status = launch_head_dim<128>(a, shape, workspace, stream); break;
        default: return cudaErrorInvalidValue;
    }
    if (status != cudaSuccess || splits == 1) return status;
    combine_kernel<<<unsigned(int64_t(a.num_tokens) * a.num_heads), unsigned(a.head_dim), 0, stream>>>(a, splits,
                                                                                                      workspace);
    return detail::launched();
}

}  // namespace llmq::kernels::cuda

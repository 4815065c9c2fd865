// Vectorised paged attention for one ISA: block-wise online softmax over the paged cache.
//
// A range of (sequence s, query head h) items is cut into groups of heads that share a KV
// head; the (query row, head) pairs of a group all read the same keys and values, so they are
// taken QT at a time (row-major: a decode row's group heads together, prefill rows of one
// head after another) and each loaded key and value vector serves QT queries. The cache is
// walked in chunks of at most CHUNK slots of one block, so the largest score buffer is
// QT x CHUNK whatever the context length:
//   1. scores  S[e][j] = (scale q_e) · k_j for the chunk's slots, four keys at a time (hsum4
//      reduces four dot products at once); slots after entry e's position get -inf (causal).
//   2. softmax m' = max(m, max_j S), c = e^(m - m'), P = e^(S - m'), l = l c + sum_j P
//   3. values  acc_e = acc_e c + sum_j P[e][j] v_j, with acc_e held in registers per W lanes.
// out = acc / l. Every entry sees cache slot 0 in its first chunk, so m is finite from then on.
#include "simd_entries.hpp"
#include "simd_vector.hpp"

namespace llmq::kernels::LLMQ_KERNELS_ISA_NS {
namespace {

#if defined(__AVX512F__)
constexpr int QT = 4;
#else
constexpr int QT = 2;
#endif
constexpr int CHUNK = 32;
constexpr float NEG_INF = -__builtin_inff();

struct kv_f32 {
    using element = float;
    static vf full(const float* p) { return vload(p); }
    static vf part(const float* p, int n) { return vloadn(p, n); }
};
struct kv_f16 {
    using element = uint16_t;
    static vf full(const uint16_t* p) { return vload_f16(p); }
    static vf part(const uint16_t* p, int n) { return vload_f16n(p, n); }
};

template <class KV>
inline vf load_d(const typename KV::element* p, int d, int D) {
    return d + W <= D ? KV::full(p + d) : KV::part(p + d, D - d);
}
inline vf load_q(const float* p, int d, int D) { return d + W <= D ? vload(p + d) : vloadn(p + d, D - d); }

// Dot products of qt query rows (pre-scaled) with keys k[0..nk), nk <= 4, into s[r][0..nk).
// q: qt rows of D values, row stride ldq.
template <class KV, int qt>
inline void score_keys(const float* q, int64_t ldq, int D, const typename KV::element* const* k,
                       int nk, float (*s)[CHUNK], int j) {
    vf acc[qt][4];
    for (int r = 0; r < qt; ++r)
        for (int t = 0; t < 4; ++t) acc[r][t] = vzero();
    for (int d = 0; d < D; d += W) {
        vf kv[4];
        for (int t = 0; t < 4; ++t) kv[t] = t < nk ? load_d<KV>(k[t], d, D) : vzero();
        for (int r = 0; r < qt; ++r) {
            const vf qv = load_q(q + r * ldq, d, D);
            for (int t = 0; t < 4; ++t) acc[r][t] = vfma(qv, kv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < qt; ++r) {
        alignas(16) float sums[4];
        _mm_store_ps(sums, hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        for (int t = 0; t < nk; ++t) s[r][j + t] = sums[t];
    }
}

// One query of a tile: its row of q / out and its position in the sequence.
struct query {
    const float* q;
    float* out;
    int64_t position;
};

// qt queries of sequence s that all read KV head kv_head.
template <class KV, int qt>
void attend_tile(const paged_attention_params& p, int64_t s, int64_t kv_head, const query* e) {
    using element = typename KV::element;
    const int D = p.head_dim;
    int64_t last_position = e[0].position;
    for (int r = 1; r < qt; ++r) last_position = e[r].position > last_position ? e[r].position : last_position;
    const int32_t* table = p.block_tables + s * p.max_blocks_per_seq;
    const int64_t slot_stride = int64_t(p.num_kv_heads) * D;
    const auto* k_cache = static_cast<const element*>(p.k_cache);
    const auto* v_cache = static_cast<const element*>(p.v_cache);

    alignas(64) float q[qt][paged_attention_max_head_dim];
    alignas(64) float acc[qt][paged_attention_max_head_dim];
    alignas(64) float scores[qt][CHUNK];
    float m[qt], l[qt];
    for (int r = 0; r < qt; ++r) {
        for (int d = 0; d < D; ++d) {
            q[r][d] = e[r].q[d] * p.scale;
            acc[r][d] = 0.0f;
        }
        m[r] = NEG_INF;
        l[r] = 0.0f;
    }

    for (int64_t b = 0; b * p.block_size <= last_position; ++b) {
        const int64_t block_base = int64_t(table[b]) * p.block_size * slot_stride + kv_head * D;
        for (int64_t j0 = 0; j0 < p.block_size; j0 += CHUNK) {
            const int64_t position0 = b * p.block_size + j0;
            if (position0 > last_position) break;
            int n = static_cast<int>(p.block_size - j0 < CHUNK ? p.block_size - j0 : CHUNK);
            if (last_position - position0 + 1 < n) n = static_cast<int>(last_position - position0 + 1);
            const element* keys = k_cache + block_base + j0 * slot_stride;
            const element* values = v_cache + block_base + j0 * slot_stride;

            for (int j = 0; j < n; j += 4) {
                const element* k[4];
                const int nk = n - j < 4 ? n - j : 4;
                for (int t = 0; t < 4; ++t) k[t] = keys + (j + (t < nk ? t : 0)) * slot_stride;
                score_keys<KV, qt>(&q[0][0], paged_attention_max_head_dim, D, k, nk, scores, j);
            }

            for (int r = 0; r < qt; ++r) {
                const int64_t visible = e[r].position - position0 + 1;  // slots entry r sees
                // Slots before `first` are older than entry r's sliding window.
                const int64_t first = p.sliding_window > 0 ? e[r].position - p.sliding_window + 1 - position0 : 0;
                float chunk_max = NEG_INF;
                for (int j = 0; j < n; ++j) {
                    if (j >= visible || j < first) scores[r][j] = NEG_INF;
                    chunk_max = scores[r][j] > chunk_max ? scores[r][j] : chunk_max;
                }
                const float new_max = chunk_max > m[r] ? chunk_max : m[r];
                if (new_max == NEG_INF) {
                    // Nothing of entry r's window is in this chunk yet: it adds no weight.
                    for (int j = 0; j < n; ++j) scores[r][j] = 0.0f;
                    continue;
                }
                const float correction = __builtin_expf(m[r] - new_max);
                vf sum = vzero();
                for (int j = 0; j < n; j += W) {
                    const int left = n - j;
                    vf x = vexp(vsub(left >= W ? vload(&scores[r][j]) : vloadn(&scores[r][j], left),
                                     vset1(new_max)));
                    if (left < W) x = vkeep(x, left, vzero());
                    sum = vadd(sum, x);
                    if (left >= W) vstore(&scores[r][j], x);
                    else vstoren(&scores[r][j], x, left);
                }
                l[r] = l[r] * correction + vhsum(sum);
                if (correction != 1.0f)
                    for (int d = 0; d < D; ++d) acc[r][d] *= correction;
                m[r] = new_max;
            }

            for (int d = 0; d < D; d += W) {
                vf a[qt];
                for (int r = 0; r < qt; ++r) a[r] = load_q(acc[r], d, D);
                for (int j = 0; j < n; ++j) {
                    const vf v = load_d<KV>(values + j * slot_stride, d, D);
                    for (int r = 0; r < qt; ++r) a[r] = vfma(vset1(scores[r][j]), v, a[r]);
                }
                for (int r = 0; r < qt; ++r) {
                    if (d + W <= D) vstore(acc[r] + d, a[r]);
                    else vstoren(acc[r] + d, a[r], D - d);
                }
            }
        }
    }

    for (int r = 0; r < qt; ++r) {
        const float inv = 1.0f / l[r];
        for (int d = 0; d < D; ++d) e[r].out[d] = acc[r][d] * inv;
    }
}

template <class KV>
void attend_queries(const paged_attention_params& p, int64_t s, int64_t kv_head, const query* e, int count) {
    int i = 0;
    for (; i + QT <= count; i += QT) attend_tile<KV, QT>(p, s, kv_head, e + i);
    for (; i < count; ++i) attend_tile<KV, 1>(p, s, kv_head, e + i);
}

template <class KV>
void attend(const paged_attention_params& p, int64_t item_begin, int64_t item_end) {
    const int64_t D = p.head_dim;
    const int64_t group = p.num_heads / p.num_kv_heads;
    query pending[QT];
    for (int64_t item = item_begin; item < item_end;) {
        const int64_t s = item / p.num_heads, h = item % p.num_heads;
        const int64_t kv_head = h / group;
        // The heads of this KV group that are in the range: [h, h_end).
        int64_t h_end = (kv_head + 1) * group;
        if (h_end - h > item_end - item) h_end = h + (item_end - item);
        const int64_t token0 = p.query_start[s];
        const int64_t rows = p.query_start[s + 1] - token0;
        const int64_t first_position = p.context_len[s] - rows;
        int count = 0;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t head = h; head < h_end; ++head) {
                const int64_t offset = ((token0 + r) * p.num_heads + head) * D;
                pending[count++] = {p.q + offset, p.out + offset, first_position + r};
                if (count == QT) {
                    attend_tile<KV, QT>(p, s, kv_head, pending);
                    count = 0;
                }
            }
        attend_queries<KV>(p, s, kv_head, pending, count);
        item += h_end - h;
    }
}

}  // namespace

void paged_attention_entry(const paged_attention_params& p, int64_t item_begin, int64_t item_end) {
    if (p.kv_dtype == dtype::f16)
        attend<kv_f16>(p, item_begin, item_end);
    else
        attend<kv_f32>(p, item_begin, item_end);
}

}  // namespace llmq::kernels::LLMQ_KERNELS_ISA_NS

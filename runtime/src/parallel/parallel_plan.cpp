#include "llmq/runtime/parallel_plan.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "llmq/kernels/cpu.hpp"

namespace llmq {

namespace {
uint64_t bytes_of(const GgufTensor* t) { return t ? t->size_bytes : 0; }
uint64_t rows_bytes(const GgufTensor* t, int64_t rows) {
    return t ? static_cast<uint64_t>(rows) * kernels::row_bytes(t->dtype, t->row_length()) : 0;
}
uint64_t cols_bytes(const GgufTensor* t, int64_t cols) {
    return t ? static_cast<uint64_t>(t->rows()) * kernels::row_bytes(t->dtype, cols) : 0;
}

// Values per block of a tensor's type (1 for plain types): row-parallel splits must cut rows
// on whole blocks.
int64_t block_of(const GgufTensor* t) { return t ? kernels::dtype_info_of(t->dtype).block_values : 1; }
}  // namespace

TensorSlice tensor_slice(const LlamaHParams& hp, int32_t tensor, int32_t rank) {
    TensorSlice s{};
    const int32_t heads = static_cast<int32_t>(hp.n_head) / tensor;
    s.head_begin = rank * heads;
    s.head_end = s.head_begin + heads;
    const int32_t group = static_cast<int32_t>(hp.n_head / hp.n_head_kv);
    s.kv_begin = s.head_begin / group;
    s.kv_end = (s.head_end - 1) / group + 1;
    const int32_t ff = static_cast<int32_t>(hp.n_ff) / tensor;
    s.ff_begin = rank * ff;
    s.ff_end = s.ff_begin + ff;
    s.vocab_padded = static_cast<int32_t>((hp.n_vocab + tensor - 1) / tensor);
    s.vocab_begin = std::min<int32_t>(rank * s.vocab_padded, hp.n_vocab);
    s.vocab_end = std::min<int32_t>(s.vocab_begin + s.vocab_padded, hp.n_vocab);
    return s;
}

Status check_tensor_split(const LlamaLayout& layout, int32_t tensor) {
    const auto& hp = layout.hp;
    const std::string t = "tensor = " + std::to_string(tensor);
    if (tensor < 1) return invalid_argument("[parallel] tensor must be at least 1");
    if (hp.n_head % tensor != 0)
        return invalid_argument("[parallel] " + t + ": the model's " + std::to_string(hp.n_head) +
                                " attention heads do not divide by " + std::to_string(tensor));
    if (hp.n_head_kv % tensor != 0 && tensor % hp.n_head_kv != 0)
        return invalid_argument("[parallel] " + t + ": the model's " +
                                std::to_string(hp.n_head_kv) +
                                " KV heads neither divide by the ranks nor divide them");
    if (hp.n_ff % tensor != 0)
        return invalid_argument("[parallel] " + t + ": the FFN size " + std::to_string(hp.n_ff) +
                                " does not divide by " + std::to_string(tensor));
    // Row-parallel weights are split inside rows: quantized rows split only on whole blocks.
    auto upper = [](kernels::dtype d) {
        std::string s = kernels::dtype_name(d);
        for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
        return s;
    };
    for (const auto& l : layout.layers) {
        const int64_t piece = int64_t(hp.n_head / tensor) * hp.head_dim;
        if (piece % block_of(l.wo) != 0)
            return invalid_argument("[parallel] " + t + ": " + upper(l.wo->dtype) +
                                    " attention output rows cannot be split into " + std::to_string(piece) +
                                    "-value pieces (needs multiples of " + std::to_string(block_of(l.wo)) + ")");
        if ((hp.n_ff / tensor) % block_of(l.ffn_down) != 0)
            return invalid_argument("[parallel] " + t + ": " + upper(l.ffn_down->dtype) +
                                    " FFN down rows cannot be split into " + std::to_string(hp.n_ff / tensor) +
                                    "-value pieces (needs multiples of " + std::to_string(block_of(l.ffn_down)) + ")");
    }
    return {};
}

uint64_t rank_layer_bytes(const LlamaLayout& layout, int32_t tensor, int32_t rank, int32_t layer) {
    const TensorSlice s = tensor_slice(layout.hp, tensor, rank);
    const int64_t hd = layout.hp.head_dim;
    const int64_t q = (s.head_end - s.head_begin) * hd, kv = (s.kv_end - s.kv_begin) * hd;
    const int64_t ff = s.ff_end - s.ff_begin;
    const auto& t = layout.layers[layer];
    uint64_t b = rows_bytes(t.wq, q) + rows_bytes(t.wk, kv) + rows_bytes(t.wv, kv) + cols_bytes(t.wo, q);
    b += rows_bytes(t.ffn_gate, ff) + rows_bytes(t.ffn_up, ff) + cols_bytes(t.ffn_down, ff);
    b += bytes_of(t.attn_norm) + bytes_of(t.ffn_norm);
    b += (q + 2 * kv) * 4 * (t.bq ? 1 : 0);
    if (t.cross) b += bytes_of(t.q_norm) + bytes_of(t.k_norm) + bytes_of(t.attn_gate) + bytes_of(t.mlp_gate);
    return b;
}

uint64_t rank_embedding_bytes(const LlamaLayout& layout, int32_t tensor, int32_t rank) {
    const TensorSlice s = tensor_slice(layout.hp, tensor, rank);
    // The last rank also holds the rows past the LM head's vocabulary (mllama).
    const int64_t extra = rank == tensor - 1 ? int64_t{layout.hp.n_embd_rows} - layout.hp.n_vocab : 0;
    return rows_bytes(layout.token_embd, s.vocab_end - s.vocab_begin + std::max<int64_t>(extra, 0));
}

uint64_t rank_lm_head_bytes(const LlamaLayout& layout, int32_t tensor, int32_t rank,
                            bool on_first_stage) {
    const TensorSlice s = tensor_slice(layout.hp, tensor, rank);
    uint64_t b = bytes_of(layout.output_norm);
    if (layout.output != layout.token_embd || !on_first_stage)
        b += rows_bytes(layout.output, s.vocab_end - s.vocab_begin);
    return b;
}

namespace {

// What each stage of a pipeline of more than one stage costs on its largest rank. Layer
// bytes are the same on every rank (equal head and FFN slices); only the vocabulary slices
// differ, and rank 0's is the largest.
struct StageCosts {
    std::vector<uint64_t> prefix;  // prefix[i]: layers [0, i), KV included
    uint64_t first = 0;            // the embedding slice
    uint64_t last = 0;             // the LM-head slice and the final norm
    int32_t stages = 0;

    int32_t layers() const { return static_cast<int32_t>(prefix.size()) - 1; }
    uint64_t cost(int32_t stage, int32_t begin, int32_t end) const {
        return (stage == 0 ? first : 0) + prefix[end] - prefix[begin] +
               (stage == stages - 1 ? last : 0);
    }

    // Can `stages` stages each cost at most `bound`? Greedy from the front: each stage takes
    // as many layers as fit, which leaves the shortest rest; the split ends as soon as the
    // rest fits as the last stage. A split into fewer stages can be cut into exactly
    // `stages` (there are at least as many layers) without raising any stage's cost.
    bool fits(uint64_t bound) const {
        const int32_t n = layers();
        int32_t begin = 0;
        for (int32_t s = 0; s < stages; ++s) {
            if ((s == 0 ? first : 0) + prefix[n] - prefix[begin] + last <= bound) return true;
            if (s == stages - 1) return false;
            int32_t end = begin;
            while (end < n - 1 && (s == 0 ? first : 0) + prefix[end + 1] - prefix[begin] <= bound)
                ++end;
            if (end == begin) return false;  // not even one layer fits this stage
            begin = end;
        }
        return false;
    }
};

StageCosts stage_costs(const LlamaLayout& layout, int32_t tensor, int32_t pipeline,
                       uint64_t kv_head_bytes) {
    StageCosts c;
    c.stages = pipeline;
    const TensorSlice rank0 = tensor_slice(layout.hp, tensor, 0);
    const uint64_t kv_per_layer = kv_head_bytes * static_cast<uint64_t>(rank0.kv_end - rank0.kv_begin);
    c.prefix.push_back(0);
    for (int32_t l = 0; l < static_cast<int32_t>(layout.layers.size()); ++l)
        c.prefix.push_back(c.prefix.back() + rank_layer_bytes(layout, tensor, 0, l) +
                           (layout.layers[l].cross ? 0 : kv_per_layer));  // cross layers keep no KV
    c.first = rank_embedding_bytes(layout, tensor, 0);
    c.last = rank_lm_head_bytes(layout, tensor, 0, pipeline == 1);
    return c;
}

// Stage boundaries whose largest stage costs `bound` at most and whose stage costs have the
// smallest sum of squares (so the stages below the bound are even too). `bound` must be
// feasible. A stage's cost grows as its start moves left, so each inner loop stops at the
// bound: about layers² / stages steps in all.
std::vector<int32_t> even_boundaries(const StageCosts& c, uint64_t bound) {
    const int32_t n = c.layers(), p = c.stages;
    constexpr double unreachable = std::numeric_limits<double>::infinity();
    // best[s][j]: the first j layers in s stages; from[s][j]: where stage s - 1 begins.
    std::vector<std::vector<double>> best(p + 1, std::vector<double>(n + 1, unreachable));
    std::vector<std::vector<int32_t>> from(p + 1, std::vector<int32_t>(n + 1, -1));
    best[0][0] = 0;
    for (int32_t s = 1; s <= p; ++s) {
        for (int32_t j = s; j <= n - (p - s); ++j) {
            for (int32_t a = j - 1; a >= s - 1; --a) {
                const uint64_t cost = c.cost(s - 1, a, j);
                if (cost > bound) break;
                if (best[s - 1][a] == unreachable) continue;
                const double v = best[s - 1][a] + static_cast<double>(cost) * static_cast<double>(cost);
                if (v < best[s][j]) {
                    best[s][j] = v;
                    from[s][j] = a;
                }
            }
        }
    }
    std::vector<int32_t> out(p + 1);
    out[p] = n;
    for (int32_t s = p; s >= 1; --s) out[s - 1] = from[s][out[s]];
    return out;
}

}  // namespace

Expected<ParallelPlan> make_parallel_plan(const LlamaLayout& layout, int32_t tensor,
                                          int32_t pipeline, uint64_t kv_head_bytes) {
    LLMQ_TRY(check_tensor_split(layout, tensor));
    const int32_t n_layer = static_cast<int32_t>(layout.layers.size());
    if (pipeline < 1) return invalid_argument("[parallel] pipeline must be at least 1");
    if (pipeline > n_layer)
        return invalid_argument("[parallel] pipeline = " + std::to_string(pipeline) +
                                " exceeds the model's " + std::to_string(n_layer) + " layers");
    ParallelPlan plan;
    plan.tensor = tensor;
    plan.pipeline = pipeline;
    const StageCosts costs = stage_costs(layout, tensor, pipeline, kv_head_bytes);
    // The smallest feasible bound: everything on one stage is an upper bound (any split of it
    // costs no more), nothing is a lower one.
    uint64_t low = 0, high = costs.first + costs.prefix.back() + costs.last;
    while (low < high) {
        const uint64_t mid = low + (high - low) / 2;
        if (costs.fits(mid)) high = mid;
        else low = mid + 1;
    }
    plan.stage_layers = even_boundaries(costs, low);
    return plan;
}

}  // namespace llmq

// Paged attention on every ISA against a naive reference that materialises the whole score
// row and takes a full softmax in double precision, on batches that mix prefill, chunked
// prefill, decode and empty sequences, with GQA, several block sizes, head sizes with vector
// tails, shuffled (non-contiguous) block tables and f16 and f32 caches.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "conformance.hpp"

using namespace llmq::kernels;
using namespace llmq::kernels::testing;

namespace {

struct sequence {
    int32_t rows;     // query rows in this batch
    int32_t context;  // cache positions including the new ones
};

struct attention_case {
    int32_t num_heads, num_kv_heads, head_dim, block_size;
    dtype kv;
    std::vector<sequence> seqs;
};

// Tolerance: every output is a convex combination of cache values in [-1, 1]. Scores are
// f32 dot products of D terms (relative error ~ sqrt(D) u), softmax weights carry vexp's
// ~2 ulp and the running rescaling a few more roundings, the weighted sum adds ~context
// roundings of size u. 2e-5 absolute leaves a 10x margin over the worst case seen at
// context 300, and a single dropped or duplicated key (weight >= 1/context) moves an output
// by ~1e-3 or more.
constexpr double tolerance = 2e-5;

// window > 0: sliding-window attention (keys older than position - window + 1 are masked).
void run_case(const attention_case& c, uint64_t seed, int32_t window = 0) {
    random_source rng(seed);
    const int32_t num_seqs = int32_t(c.seqs.size());
    const int64_t D = c.head_dim;
    int32_t max_blocks = 1;
    std::vector<int32_t> query_start(1, 0), context_len;
    for (const sequence& s : c.seqs) {
        query_start.push_back(query_start.back() + s.rows);
        context_len.push_back(s.context);
        max_blocks = std::max(max_blocks, (s.context + c.block_size - 1) / c.block_size);
    }
    const int32_t num_tokens = query_start.back();
    // Physical blocks: every sequence's blocks plus spares, handed out in shuffled order.
    const int32_t num_blocks = num_seqs * max_blocks + 3;
    std::vector<int32_t> physical(static_cast<std::size_t>(num_blocks));
    std::iota(physical.begin(), physical.end(), 0);
    for (int32_t i = num_blocks - 1; i > 0; --i) std::swap(physical[i], physical[rng.bits() % uint32_t(i + 1)]);
    std::vector<int32_t> tables(std::size_t(num_seqs * max_blocks), -1);
    int32_t next = 0;
    for (int32_t s = 0; s < num_seqs; ++s)
        for (int32_t b = 0; b * c.block_size < c.seqs[s].context; ++b) tables[s * max_blocks + b] = physical[next++];

    const std::size_t cache_values = std::size_t(num_blocks) * c.block_size * c.num_kv_heads * D;
    std::vector<float> kf = rng.floats(cache_values, -1.0, 1.0), vf = rng.floats(cache_values, -1.0, 1.0);
    std::vector<uint16_t> kh(cache_values), vh(cache_values);
    if (c.kv == dtype::f16) {
        row_from_f32(isa::scalar, dtype::f16, kf.data(), kh.data(), int64_t(cache_values));
        row_from_f32(isa::scalar, dtype::f16, vf.data(), vh.data(), int64_t(cache_values));
        row_to_f32(isa::scalar, dtype::f16, kh.data(), kf.data(), int64_t(cache_values));  // what the cache holds
        row_to_f32(isa::scalar, dtype::f16, vh.data(), vf.data(), int64_t(cache_values));
    }
    const std::vector<float> q = rng.floats(std::size_t(num_tokens) * c.num_heads * D, -1.0, 1.0);
    const float scale = float(1.0 / std::sqrt(double(D)));

    // Naive reference: position p of sequence s is in block tables[s][p / bs], slot p % bs.
    std::vector<double> expected(q.size(), 0.0);
    const int32_t group = c.num_heads / c.num_kv_heads;
    for (int32_t s = 0; s < num_seqs; ++s) {
        for (int32_t r = 0; r < c.seqs[s].rows; ++r) {
            const int32_t token = query_start[s] + r;
            const int32_t position = c.seqs[s].context - c.seqs[s].rows + r;
            for (int32_t h = 0; h < c.num_heads; ++h) {
                const int32_t kvh = h / group;
                std::vector<double> scores(static_cast<std::size_t>(position + 1));
                for (int32_t p = 0; p <= position; ++p) {
                    const std::size_t base = (std::size_t(tables[s * max_blocks + p / c.block_size]) * c.block_size +
                                              std::size_t(p % c.block_size)) * c.num_kv_heads * D + std::size_t(kvh) * D;
                    double dot = 0.0;
                    for (int64_t d = 0; d < D; ++d) dot += double(q[(std::size_t(token) * c.num_heads + h) * D + d]) * kf[base + d];
                    scores[p] = window > 0 && p <= position - window ? -INFINITY : dot * scale;
                }
                const double top = *std::max_element(scores.begin(), scores.end());
                double total = 0.0;
                for (double& sc : scores) total += (sc = std::exp(sc - top));
                for (int32_t p = 0; p <= position; ++p) {
                    const std::size_t base = (std::size_t(tables[s * max_blocks + p / c.block_size]) * c.block_size +
                                              std::size_t(p % c.block_size)) * c.num_kv_heads * D + std::size_t(kvh) * D;
                    for (int64_t d = 0; d < D; ++d)
                        expected[(std::size_t(token) * c.num_heads + h) * D + d] += scores[p] / total * vf[base + d];
                }
            }
        }
    }

    paged_attention_params p{};
    p.q = q.data();
    p.k_cache = c.kv == dtype::f16 ? static_cast<const void*>(kh.data()) : kf.data();
    p.v_cache = c.kv == dtype::f16 ? static_cast<const void*>(vh.data()) : vf.data();
    p.kv_dtype = c.kv;
    p.query_start = query_start.data();
    p.context_len = context_len.data();
    p.block_tables = tables.data();
    p.num_seqs = num_seqs;
    p.num_heads = c.num_heads;
    p.num_kv_heads = c.num_kv_heads;
    p.head_dim = c.head_dim;
    p.block_size = c.block_size;
    p.max_blocks_per_seq = max_blocks;
    p.scale = scale;
    p.sliding_window = window;
    const std::vector<double> bound(expected.size(), tolerance);
    const int64_t items = int64_t(num_seqs) * c.num_heads;
    for (isa which : supported_isas()) {
        std::vector<float> out(q.size(), 777.0f);
        p.out = out.data();
        // Three uneven ranges of items, as a parallel_for would hand out.
        const int64_t cut1 = items / 3, cut2 = items - items / 5;
        paged_attention(which, p, 0, cut1);
        paged_attention(which, p, cut1, cut2);
        paged_attention(which, p, cut2, items);
        std::ostringstream context;
        context << "attention " << isa_name(which) << " " << dtype_name(c.kv) << " heads=" << c.num_heads << "/"
                << c.num_kv_heads << " D=" << c.head_dim << " block=" << c.block_size << " window=" << window;
        check_within(out.data(), expected.data(), bound.data(), out.size(), context.str());

        // A range writes exactly its own (sequence, head) items: the middle range alone.
        std::vector<float> partial(q.size(), 777.0f);
        p.out = partial.data();
        paged_attention(which, p, cut1, cut2);
        std::size_t wrong = 0;
        for (int32_t s = 0; s < num_seqs; ++s)
            for (int32_t t = query_start[s]; t < query_start[s + 1]; ++t)
                for (int32_t h = 0; h < c.num_heads; ++h) {
                    const int64_t item = int64_t(s) * c.num_heads + h;
                    const bool inside = item >= cut1 && item < cut2;
                    for (int64_t d = 0; d < D; ++d) {
                        const std::size_t i = (std::size_t(t) * c.num_heads + h) * D + d;
                        wrong += inside ? partial[i] != out[i] : partial[i] != 777.0f;
                    }
                }
        CHECK_MESSAGE(wrong == 0, context.str(), ": items [", cut1, ", ", cut2, ") wrote ", wrong,
                      " values they should not have (or differ from the full run)");
    }
}

// prefill from 0, decode, chunked prefill continuing a sequence, an idle sequence, a long one
const std::vector<sequence> mixed = {{5, 5}, {1, 37}, {7, 20}, {0, 3}, {1, 1}, {3, 300}};

}  // namespace

TEST_SUITE("kernels") {
    TEST_CASE("paged_attention_matches_full_softmax_with_f32_cache_on_every_isa") {
        uint64_t seed = 1;
        for (int32_t block : {1, 3, 16, 64})
            for (int32_t D : {64, 24, 7})
                run_case({4, 4, D, block, dtype::f32, mixed}, seed++);
    }
    TEST_CASE("paged_attention_matches_full_softmax_with_f16_cache_on_every_isa") {
        uint64_t seed = 100;
        for (int32_t block : {1, 16, 48})
            for (int32_t D : {128, 40, 5})
                run_case({4, 2, D, block, dtype::f16, mixed}, seed++);
    }
    TEST_CASE("paged_attention_groups_query_heads_onto_kv_heads") {
        run_case({8, 2, 64, 16, dtype::f32, mixed}, 200);
        run_case({6, 1, 32, 8, dtype::f16, mixed}, 201);
        run_case({32, 4, 64, 16, dtype::f16, {{9, 9}, {1, 70}}}, 202);
    }
    TEST_CASE("paged_attention_handles_the_largest_head_size") {
        run_case({2, 1, paged_attention_max_head_dim, 16, dtype::f16, {{6, 40}, {1, 17}}}, 300);
    }
    TEST_CASE("paged_attention_masks_keys_older_than_the_sliding_window") {
        // Windows of 1 (each query sees only itself), shorter than a block, spanning blocks and
        // chunks, and longer than every context (the same as none).
        uint64_t seed = 500;
        for (int32_t window : {1, 3, 17, 70, 1000})
            for (int32_t block : {1, 16, 64}) {
                run_case({4, 2, 32, block, dtype::f32, mixed}, seed++, window);
                run_case({4, 4, 24, block, dtype::f16, mixed}, seed++, window);
            }
    }
    TEST_CASE("paged_attention_of_a_single_position_returns_its_value") {
        // Context 1: softmax over one key is 1, so out = v exactly (up to f32 rounding of v).
        run_case({3, 3, 16, 4, dtype::f32, {{1, 1}}}, 400);
    }
}

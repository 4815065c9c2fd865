// attention-cuda against a float64 reference: a batch mixing prefill, chunked prefill and
// decode over a paged cache whose blocks are shuffled, for GQA and plain heads, head dims 64
// and 128, bf16/f16/f32 caches and activations, with the split-context path forced and
// chosen automatically; out poisoned before every run. A block id outside the cache makes
// exactly that sequence's rows NaN. Needs a GPU (exits 77 without one).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "../plugins/plugin_test_host.hpp"
#include "cuda_test_support.hpp"

namespace {

using namespace llmq::cuda_testing;
using llmq::plugin_testing::loaded_plugin;

struct sequence {
    int32_t queries;
    int32_t context;
};

struct batch {
    int32_t num_heads, num_kv_heads, head_dim, block_size;
    k::dtype act, kv;
    std::vector<sequence> seqs;
};

llmq_tensor rows_tensor(void* data, k::dtype t, int32_t tokens, int32_t heads, int32_t head_dim) {
    llmq_tensor v{};
    v.data = data;
    v.rank = 3;
    v.dtype = int32_t(t);
    const int64_t e = int64_t(element_bytes(t));
    v.shape[0] = tokens;
    v.shape[1] = heads;
    v.shape[2] = head_dim;
    v.strides[2] = e;
    v.strides[1] = head_dim * e;
    v.strides[0] = int64_t(heads) * head_dim * e;
    v.device_type = LLMQ_BACKEND_CUDA;
    v.device_index = 0;
    return v;
}

// Runs `b` once; returns the worst error in tolerances over the sequences other than
// `broken` (whose first block id is set past the cache, and whose rows must all be NaN).
double run_batch(const llmq_plugin_descriptor* d, void* state, cuda_host& host, const batch& b, std::mt19937& rng,
                 int broken = -1) {
    const int32_t num_seqs = int32_t(b.seqs.size());
    int32_t max_blocks = 1, tokens = 0;
    for (const auto& s : b.seqs) {
        max_blocks = std::max(max_blocks, (s.context + b.block_size - 1) / b.block_size);
        tokens += s.queries;
    }
    const int32_t num_blocks = num_seqs * max_blocks + 3;
    std::vector<int32_t> order(static_cast<size_t>(num_blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<int32_t> tables(size_t(num_seqs * max_blocks), -1), query_start(size_t(num_seqs + 1), 0),
        context(static_cast<size_t>(num_seqs));
    for (int32_t s = 0, next = 0; s < num_seqs; ++s) {
        query_start[size_t(s + 1)] = query_start[size_t(s)] + b.seqs[size_t(s)].queries;
        context[size_t(s)] = b.seqs[size_t(s)].context;
        for (int32_t i = 0; i * b.block_size < context[size_t(s)]; ++i) tables[size_t(s * max_blocks + i)] = order[size_t(next++)];
    }
    if (broken >= 0) tables[size_t(broken * max_blocks)] = num_blocks;

    const int64_t D = b.head_dim, H = b.num_heads, G = b.num_kv_heads;
    const int64_t cache_values = int64_t(num_blocks) * b.block_size * G * D;
    const stored_rows kc = store_rows(b.kv, random_values(rng, size_t(cache_values)), 1, cache_values,
                                      cache_values * int64_t(element_bytes(b.kv)));
    const stored_rows vc = store_rows(b.kv, random_values(rng, size_t(cache_values)), 1, cache_values,
                                      cache_values * int64_t(element_bytes(b.kv)));
    const int64_t q_values = int64_t(tokens) * H * D;
    const stored_rows q = store_rows(b.act, random_values(rng, size_t(q_values)), 1, q_values,
                                     q_values * int64_t(element_bytes(b.act)));

    device_buffer dq(q.bytes.size()), dout(q.bytes.size()), dk(kc.bytes.size()), dv(vc.bytes.size());
    device_buffer dstart(query_start.size() * 4), dcontext(context.size() * 4), dtables(tables.size() * 4);
    dq.upload(q.bytes.data());
    dk.upload(kc.bytes.data());
    dv.upload(vc.bytes.data());
    dstart.upload(query_start.data());
    dcontext.upload(context.data());
    dtables.upload(tables.data());
    dout.poison();

    llmq_attention_args a{};
    a.struct_size = sizeof a;
    a.q = rows_tensor(dq.data, b.act, tokens, b.num_heads, b.head_dim);
    a.out = rows_tensor(dout.data, b.act, tokens, b.num_heads, b.head_dim);
    a.k_cache = dk.data;
    a.v_cache = dv.data;
    a.query_start = dstart.as<int32_t>();
    a.context_len = dcontext.as<int32_t>();
    a.block_tables = dtables.as<int32_t>();
    a.kv_dtype = int32_t(b.kv);
    a.num_seqs = num_seqs;
    a.num_tokens = tokens;
    a.num_heads = b.num_heads;
    a.num_kv_heads = b.num_kv_heads;
    a.head_dim = b.head_dim;
    a.block_size = b.block_size;
    a.max_blocks_per_seq = max_blocks;
    a.num_blocks = num_blocks;
    a.scale = float(1.0 / std::sqrt(double(D)));
    llmq_error error{};
    const llmq_status status = d->attention->attention(state, &a, &error);
    REQUIRE_MESSAGE(status == LLMQ_OK, error.message);
    host.sync();
    std::vector<uint8_t> out_bytes(dout.bytes);
    dout.download(out_bytes.data());
    const std::vector<double> out = widen(b.act, out_bytes.data(), 1, q_values, q_values * int64_t(element_bytes(b.act)));

    double worst = 0.0;
    std::vector<double> scores;
    for (int32_t s = 0; s < num_seqs; ++s) {
        const int32_t n_q = b.seqs[size_t(s)].queries, ctx = context[size_t(s)];
        for (int32_t i = 0; i < n_q; ++i) {
            const int64_t token = query_start[size_t(s)] + i;
            const int32_t position = ctx - n_q + i;
            for (int64_t h = 0; h < H; ++h) {
                const int64_t g = h / (H / G);
                const double* qr = &q.values[size_t((token * H + h) * D)];
                const double* got = &out[size_t((token * H + h) * D)];
                if (s == broken) {
                    for (int64_t dd = 0; dd < D; ++dd)
                        if (!std::isnan(got[dd])) worst = std::max(worst, 1e30);
                    continue;
                }
                scores.assign(size_t(position + 1), 0.0);
                double top = -1e300;
                for (int32_t p = 0; p <= position; ++p) {
                    const int64_t slot = int64_t(tables[size_t(s * max_blocks + p / b.block_size)]) * b.block_size + p % b.block_size;
                    const double* kr = &kc.values[size_t((slot * G + g) * D)];
                    double dot = 0.0;
                    for (int64_t dd = 0; dd < D; ++dd) dot += qr[dd] * kr[dd];
                    scores[size_t(p)] = dot * double(a.scale);
                    top = std::max(top, scores[size_t(p)]);
                }
                double sum = 0.0;
                for (auto& sc : scores) sum += (sc = std::exp(sc - top));
                for (int64_t dd = 0; dd < D; ++dd) {
                    double ref = 0.0;
                    for (int32_t p = 0; p <= position; ++p) {
                        const int64_t slot = int64_t(tables[size_t(s * max_blocks + p / b.block_size)]) * b.block_size + p % b.block_size;
                        ref += scores[size_t(p)] * vc.values[size_t((slot * G + g) * D + dd)];
                    }
                    ref /= sum;
                    // Output rounding, plus f32 softmax with __expf (a few ulp per weight) on
                    // values of magnitude <= 1.
                    const double tol = rounding_of(b.act) * std::fabs(ref) + 2e-5;
                    const double err = std::isfinite(got[dd]) ? std::fabs(got[dd] - ref) / tol : 1e30;
                    worst = std::max(worst, err);
                }
            }
        }
    }
    return worst;
}

const std::vector<sequence> mixed = {{37, 37}, {1, 300}, {5, 70}, {1, 1}, {1, 2000}, {64, 700}, {3, 3}};

}  // namespace

TEST_CASE("attention_cuda_matches_a_float64_reference_on_mixed_batches") {
    loaded_plugin plugin("attention-cuda");
    std::mt19937 rng(99);
    using t = k::dtype;
    const std::vector<const char*> configs =
        quick_run() ? std::vector<const char*>{"", "splits = 3\n"} : std::vector<const char*>{"", "splits = 3\n", "splits = 8\n"};
    for (const char* config : configs) {
        cuda_host host(config);
        auto inst = plugin.init(&host.table);
        REQUIRE_MESSAGE(inst->status == LLMQ_OK, inst->error.message);
        const batch batches[] = {
            {8, 8, 64, 16, t::f32, t::f32, mixed},   {32, 8, 128, 16, t::bf16, t::bf16, mixed},
            {8, 2, 128, 32, t::f16, t::f16, mixed},  {4, 1, 64, 8, t::bf16, t::f16, mixed},
            {32, 8, 128, 16, t::f32, t::bf16, {{1, 4000}, {1, 17}}},
            {12, 4, 64, 16, t::bf16, t::bf16, {{200, 200}}},
        };
        for (size_t bi = 0; bi < (quick_run() ? 3 : std::size(batches)); ++bi) {
            const batch& b = batches[bi];
            const double worst = run_batch(plugin.descriptor, inst->state, host, b, rng);
            INFO("config '", config, "' heads ", b.num_heads, "/", b.num_kv_heads, " head_dim ", b.head_dim, " act ",
                 k::dtype_name(b.act), " kv ", k::dtype_name(b.kv), ": worst error ", worst, " tolerances");
            CHECK(worst <= 1.0);
        }
    }
}

TEST_CASE("attention_cuda_turns_an_out_of_range_block_id_into_nan_rows_of_that_sequence_only") {
    loaded_plugin plugin("attention-cuda");
    std::mt19937 rng(7);
    for (const char* config : {"", "splits = 4\n"}) {
        cuda_host host(config);
        auto inst = plugin.init(&host.table);
        REQUIRE_MESSAGE(inst->status == LLMQ_OK, inst->error.message);
        const batch b{8, 2, 64, 16, k::dtype::bf16, k::dtype::bf16, mixed};
        CHECK(run_batch(plugin.descriptor, inst->state, host, b, rng, 2) <= 1.0);
    }
}

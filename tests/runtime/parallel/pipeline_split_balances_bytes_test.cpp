// The pipeline stage balancer: contiguous stages of at least one layer whose largest stage
// is as small as any split can make it, for every pipeline size and layer count, checked
// against an exhaustive search and an independent dynamic programme; the memory planner
// and the executor of a loaded model use that same split.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <random>

#include "../engine/engine_fixture.hpp"
#include "llmq/runtime/byte_size.hpp"

using namespace llmq;
using namespace llmq::test;

namespace {

// The largest rank's bytes of each stage, from the planner's own byte model.
std::vector<uint64_t> stage_bytes(const LlamaLayout& layout, const ParallelPlan& plan) {
    std::vector<uint64_t> out;
    for (int32_t s = 0; s < plan.pipeline; ++s) {
        uint64_t most = 0;
        for (int32_t r = 0; r < plan.tensor; ++r)
            most = std::max(most, shard_weight_bytes(layout, {s, plan.pipeline, r, plan.tensor,
                                                              plan.stage_layers[s],
                                                              plan.stage_layers[s + 1]}));
        out.push_back(most);
    }
    return out;
}

uint64_t largest(const std::vector<uint64_t>& v) { return *std::max_element(v.begin(), v.end()); }

void check_shape(const ParallelPlan& plan, int32_t layers, int32_t pipeline) {
    REQUIRE(plan.stage_layers.size() == static_cast<size_t>(pipeline + 1));
    CHECK(plan.stage_layers.front() == 0);
    CHECK(plan.stage_layers.back() == layers);
    for (int32_t s = 0; s < pipeline; ++s) CHECK(plan.stage_layers[s] < plan.stage_layers[s + 1]);
}

// The smallest largest-stage over all splits, by trying every one (small layer counts).
uint64_t exhaustive_best(const LlamaLayout& layout, int32_t tensor, int32_t pipeline) {
    const int32_t n = static_cast<int32_t>(layout.layers.size());
    uint64_t best = std::numeric_limits<uint64_t>::max();
    ParallelPlan p;
    p.tensor = tensor;
    p.pipeline = pipeline;
    p.stage_layers.assign(pipeline + 1, 0);
    p.stage_layers[pipeline] = n;
    std::function<void(int32_t)> place = [&](int32_t s) {
        if (s == pipeline) {
            best = std::min(best, largest(stage_bytes(layout, p)));
            return;
        }
        for (int32_t b = p.stage_layers[s - 1] + 1; b <= n - (pipeline - s); ++b) {
            p.stage_layers[s] = b;
            place(s + 1);
        }
    };
    if (pipeline == 1) return largest(stage_bytes(layout, [&] {
                                          ParallelPlan one = p;
                                          one.stage_layers = {0, n};
                                          return one;
                                      }()));
    place(1);
    return best;
}

// The same optimum by a plain O(pipeline × layers²) min-max programme over prefix stages.
uint64_t dynamic_best(const LlamaLayout& layout, int32_t tensor, int32_t pipeline) {
    const int32_t n = static_cast<int32_t>(layout.layers.size());
    auto cost = [&](int32_t s, int32_t a, int32_t b) {
        uint64_t most = 0;
        for (int32_t r = 0; r < tensor; ++r)
            most = std::max(most, shard_weight_bytes(layout, {s, pipeline, r, tensor, a, b}));
        return most;
    };
    constexpr uint64_t none = std::numeric_limits<uint64_t>::max();
    std::vector<std::vector<uint64_t>> f(pipeline + 1, std::vector<uint64_t>(n + 1, none));
    f[0][0] = 0;
    for (int32_t s = 1; s <= pipeline; ++s)
        for (int32_t j = s; j <= n; ++j)
            for (int32_t a = s - 1; a < j; ++a)
                if (f[s - 1][a] != none) f[s][j] = std::min(f[s][j], std::max(f[s - 1][a], cost(s - 1, a, j)));
    return f[pipeline][n];
}

std::vector<DeviceInfo> devices_of(int count, uint64_t bytes) {
    std::vector<DeviceInfo> out(count);
    for (int i = 0; i < count; ++i) {
        out[i].index = i;
        out[i].name = "device:" + std::to_string(i);
        out[i].memory_capacity = bytes;
    }
    return out;
}

std::shared_ptr<const GgufFile> open_header(const std::string& path) {
    GgufFile::Options o;
    o.require_data = false;
    auto f = GgufFile::open(path, o);
    REQUIRE_MESSAGE(f.ok(), f.status().message());
    return *f;
}

// Llama-3-70B-shaped, header only: the model.
std::shared_ptr<const GgufFile> llama70b_header(const TempDir& dir, kernels::dtype dtype) {
    RandomLlamaSpec spec;
    spec.dim = 8192;
    spec.layers = 80;
    spec.heads = 64;
    spec.kv_heads = 8;
    spec.ffn = 28672;
    spec.vocab = 128256;
    spec.dtype = dtype;
    spec.header_only = true;
    return open_header(make_model(dir, spec, "llama70b.gguf"));
}

// A hand-built layout whose layers have different weight types (as mixed-quant files do),
// so that the layer bytes differ and an even count of layers is not the answer.
struct MixedLayout {
    std::vector<GgufTensor> tensors;
    LlamaLayout layout;

    MixedLayout(int32_t layers, uint32_t seed) {
        const int64_t E = 128, ff = 256, vocab = 1000, hd = 32;
        layout.hp.n_embd = E;
        layout.hp.n_head = 4;
        layout.hp.n_head_kv = 2;
        layout.hp.head_dim = hd;
        layout.hp.n_ff = ff;
        layout.hp.n_vocab = vocab;
        layout.hp.n_layer = layers;
        std::mt19937 rng(seed);
        const kernels::dtype types[] = {kernels::dtype::f32, kernels::dtype::f16, kernels::dtype::q8_0};
        tensors.reserve(static_cast<size_t>(layers) * 9 + 3);
        auto add = [&](kernels::dtype t, int64_t cols, int64_t rows) {
            GgufTensor g;
            g.dtype = t;
            g.shape = {cols, rows};
            g.size_bytes = static_cast<uint64_t>(rows) * kernels::row_bytes(t, cols);
            tensors.push_back(g);
            return &tensors.back();
        };
        layout.token_embd = add(types[rng() % 3], E, vocab);
        layout.output = add(types[rng() % 3], E, vocab);
        layout.output_norm = add(kernels::dtype::f32, E, 1);
        for (int32_t l = 0; l < layers; ++l) {
            const kernels::dtype t = types[rng() % 3];
            LlamaLayerTensors L;
            L.attn_norm = add(kernels::dtype::f32, E, 1);
            L.ffn_norm = add(kernels::dtype::f32, E, 1);
            L.wq = add(t, E, 4 * hd);
            L.wk = add(t, E, 2 * hd);
            L.wv = add(t, E, 2 * hd);
            L.wo = add(t, 4 * hd, E);
            L.ffn_gate = add(t, E, ff);
            L.ffn_up = add(t, E, ff);
            L.ffn_down = add(t, ff, E);
            layout.layers.push_back(L);
        }
    }
};

}  // namespace

TEST_CASE("pipeline_split_of_80_layers_is_even_by_bytes_on_2_3_4_5_8_stages") {
    TempDir dir;
    auto file = llama70b_header(dir, kernels::dtype::bf16);
    auto layout = load_llama_layout(*file);
    REQUIRE_MESSAGE(layout.ok(), layout.status().message());
    const uint64_t layer = shard_weight_bytes(*layout, {1, 3, 0, 1, 1, 2});  // one middle layer
    for (int32_t pipeline : {2, 3, 4, 5, 8}) {
        for (int32_t tensor : {1, 2}) {
            CAPTURE(pipeline);
            CAPTURE(tensor);
            auto plan = make_parallel_plan(*layout, tensor, pipeline);
            REQUIRE_MESSAGE(plan.ok(), plan.status().message());
            check_shape(*plan, 80, pipeline);
            const auto bytes = stage_bytes(*layout, *plan);
            CHECK(largest(bytes) == dynamic_best(*layout, tensor, pipeline));
            // Even: no stage is more than one layer (per rank) and the embedding above another.
            const uint64_t smallest = *std::min_element(bytes.begin(), bytes.end());
            CHECK(largest(bytes) - smallest <= layer / tensor + rank_embedding_bytes(*layout, tensor, 0));
            // The greedy balancer's wrap gave 59 layers to one of four stages.
            for (int32_t s = 0; s < pipeline; ++s)
                CHECK(plan->stage_layers[s + 1] - plan->stage_layers[s] <= 80 / pipeline + 2);
        }
    }
}

TEST_CASE("pipeline_split_matches_an_exhaustive_search_on_mixed_layer_sizes") {
    for (uint32_t seed = 1; seed <= 12; ++seed) {
        const int32_t layers = 6 + static_cast<int32_t>(seed % 7);  // 6..12 layers
        MixedLayout m(layers, seed);
        for (int32_t pipeline = 1; pipeline <= std::min(layers, 6); ++pipeline) {
            for (int32_t tensor : {1, 2}) {
                CAPTURE(seed);
                CAPTURE(layers);
                CAPTURE(pipeline);
                CAPTURE(tensor);
                auto plan = make_parallel_plan(m.layout, tensor, pipeline);
                REQUIRE_MESSAGE(plan.ok(), plan.status().message());
                check_shape(*plan, layers, pipeline);
                CHECK(largest(stage_bytes(m.layout, *plan)) == exhaustive_best(m.layout, tensor, pipeline));
            }
        }
    }
}

TEST_CASE("pipeline_split_of_every_layer_count_up_to_40_on_up_to_8_stages_is_optimal") {
    for (int32_t layers = 1; layers <= 40; ++layers) {
        MixedLayout m(layers, 100 + layers);
        for (int32_t pipeline = 1; pipeline <= std::min(layers, 8); ++pipeline) {
            CAPTURE(layers);
            CAPTURE(pipeline);
            auto plan = make_parallel_plan(m.layout, 1, pipeline);
            REQUIRE_MESSAGE(plan.ok(), plan.status().message());
            check_shape(*plan, layers, pipeline);
            CHECK(largest(stage_bytes(m.layout, *plan)) == dynamic_best(m.layout, 1, pipeline));
        }
    }
    MixedLayout m(4, 1);
    CHECK_FALSE(make_parallel_plan(m.layout, 1, 5).ok());
    CHECK_FALSE(make_parallel_plan(m.layout, 1, 0).ok());
}

TEST_CASE("planner_fits_70b_on_four_80gib_stages_and_prints_the_kv_it_counts") {
    TempDir dir;
    auto file = llama70b_header(dir, kernels::dtype::f16);
    auto layout = load_llama_layout(*file);
    REQUIRE(layout.ok());
    PlannerInput in;
    in.context_length = 2048;
    in.pipeline = 4;
    auto four = plan_memory(*layout, devices_of(4, 80ull << 30), in);
    REQUIRE(four.ok());
    CAPTURE(four->to_text());
    CHECK(four->fits);
    CHECK(four->num_blocks > 0);
    // Every device has room, but [kv_cache] memory holds less than one sequence: say that.
    in.kv_memory = 1 << 20;
    auto short_kv = plan_memory(*layout, devices_of(4, 80ull << 30), in);
    REQUIRE(short_kv.ok());
    CHECK_FALSE(short_kv->fits);
    CAPTURE(short_kv->reason);
    CHECK(short_kv->reason.find("[kv_cache] memory = 1.0 MiB") != std::string::npos);

    // A plan that does not fit shows the KV its refusal counts (one 2048-token sequence),
    // never 0 B and 0 blocks.
    auto one = plan_memory(*layout, devices_of(1, 80ull << 30), PlannerInput{});
    REQUIRE(one.ok());
    const std::string text = one->to_text();
    CAPTURE(text);
    CHECK_FALSE(one->fits);
    CHECK(one->num_blocks == (one->context_length + one->block_size - 1) / one->block_size);
    CHECK(one->devices[0].kv == one->devices[0].minimum_kv);
    CHECK(text.find("kv 0 B") == std::string::npos);
    CHECK(text.find("KV blocks 0 ") == std::string::npos);
    const std::string kv = format_bytes(one->devices[0].minimum_kv);
    CHECK(text.find("kv " + kv) != std::string::npos);
    CHECK(text.find(kv + " of KV cache") != std::string::npos);
}

TEST_CASE("planner_names_bytes_and_a_pipeline_split_that_fits") {
    // Head counts that allow no tensor split (5 KV heads), so only pipeline stages can help.
    TempDir dir;
    RandomLlamaSpec spec;
    spec.dim = 6400;
    spec.layers = 80;
    spec.heads = 20;
    spec.kv_heads = 5;
    spec.ffn = 20480;
    spec.vocab = 32000;
    spec.dtype = kernels::dtype::f16;
    spec.header_only = true;
    auto file = open_header(make_model(dir, spec, "m.gguf"));
    auto layout = load_llama_layout(*file);
    REQUIRE(layout.ok());
    const uint64_t weights = layout->weight_bytes();
    // Each device holds a little over a third of the weights: three or four stages fit.
    const auto devices = devices_of(4, weights * 3 / 8);
    PlannerInput in;
    in.memory_fraction = 1.0;
    in.context_length = 512;
    in.max_seqs = 1;
    in.pipeline = 2;
    auto two = plan_memory(*layout, devices, in);
    REQUIRE(two.ok());
    CHECK_FALSE(two->fits);
    CAPTURE(two->reason);
    CHECK(two->reason.find("GiB of weights") != std::string::npos);
    CHECK(two->reason.find("tensor = 1, pipeline = 3") != std::string::npos);
    CHECK(two->reason.find("and fits") != std::string::npos);
    in.pipeline.reset();
    auto all = plan_memory(*layout, devices, in);
    REQUIRE(all.ok());
    CAPTURE(all->to_text());
    CHECK(all->fits);
    CHECK(all->parallel.pipeline == 4);
}

TEST_CASE("executor_runs_the_planners_split") {
    // 16 layers on 4 CPU stages; the embedding and LM head weigh about a layer each, so the
    // balanced split is not 4 x 4 layers.
    TempDir dir;
    RandomLlamaSpec spec;
    spec.dim = 64;
    spec.layers = 16;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 128;
    spec.vocab = 1024;
    const std::string model = make_model(dir, spec, "m.gguf");
    Config c = config_for(model);
    c.devices.cpu = 4;
    c.devices.cpu_threads_per_device = 1;
    c.parallel.pipeline = 4;
    auto rt = load(c);

    auto file = GgufFile::open(model);
    REQUIRE(file.ok());
    auto layout = load_llama_layout(**file);
    REQUIRE(layout.ok());
    std::vector<DeviceInfo> infos;
    for (const auto& d : rt->devices()) infos.push_back(d->info());
    auto planned = plan_memory(*layout, infos, planner_input(c));
    REQUIRE(planned.ok());
    REQUIRE(planned->fits);
    const auto& split = planned->parallel.stage_layers;
    CAPTURE(planned->to_text());
    CHECK(split != std::vector<int32_t>{0, 4, 8, 12, 16});

    const auto shards = rt->executor().shards();
    REQUIRE(shards.size() == 4);
    for (int32_t s = 0; s < 4; ++s) {
        CAPTURE(s);
        CHECK(shards[s].stage == s);
        CHECK(shards[s].layer_begin == split[s]);
        CHECK(shards[s].layer_end == split[s + 1]);
        CHECK(shards[s].weight_bytes == planned->devices[s].weights);
        CHECK(shards[s].kv_bytes == planned->devices[s].kv);
    }
    // And the model still generates across the four stages.
    auto sink = std::make_shared<CollectSink>();
    REQUIRE(rt->engine().submit(request({1, 2, 3}, 4, 0.0f, 1), sink).ok());
    run_until_done(rt->engine(), {sink});
    CHECK(sink->info().tokens.size() == 4);
}

// Tensor and pipeline parallelism give the same model: on random models the last-position
// logits agree to a tight tolerance and greedy tokens are identical between one device and
// tp=2, pp=2 and tp=2 x pp=2 (four CPU devices on however many cores).
#include <doctest/doctest.h>

#include <cmath>

#include "../engine/engine_fixture.hpp"
#include "llmq/runtime/pipeline_schedule.hpp"

using namespace llmq;
using namespace llmq::test;

namespace {

struct Result {
    std::vector<float> logits;
    std::vector<int32_t> tokens;
};

Result generate(const std::string& model, int cpu, std::optional<int> tp, std::optional<int> pp) {
    Config c = config_for(model);
    c.devices.cpu = cpu;
    c.devices.cpu_threads_per_device = 1;
    c.parallel.tensor = tp;
    c.parallel.pipeline = pp;
    auto rt = load(c);
    REQUIRE(rt->plan().parallel.tensor == tp.value_or(1));
    REQUIRE(rt->plan().parallel.pipeline == pp.value_or(1));
    auto sink = std::make_shared<CollectSink>();
    sink->keep_logits_ = true;
    std::vector<int32_t> prompt = {1, 17, 230, 5, 99, 41, 7, 300, 12};
    REQUIRE(rt->engine().submit(request(prompt, 12, 0.0f, 1), sink).ok());
    run_until_done(rt->engine(), {sink});
    return {sink->first_logits_, sink->info().tokens};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

void check_model(RandomLlamaSpec spec, const char* what) {
    CAPTURE(what);
    TempDir dir;
    auto model = make_model(dir, spec, "m.gguf");
    const Result one = generate(model, 1, 1, 1);
    REQUIRE(one.logits.size() == spec.vocab);
    double scale = 0;
    for (float v : one.logits) scale = std::max(scale, double(std::abs(v)));
    struct Split {
        int cpu;
        int tp, pp;
    };
    for (Split s : {Split{2, 2, 1}, Split{2, 1, 2}, Split{4, 2, 2}}) {
        CAPTURE(s.tp);
        CAPTURE(s.pp);
        const Result r = generate(model, s.cpu, s.tp, s.pp);
        // Only the order of the f32 sums differs (partial sums per rank, then the all-reduce):
        // a few ulps of the logit scale.
        CHECK(max_abs_diff(one.logits, r.logits) <= 1e-4 * std::max(1.0, scale));
        CHECK(r.tokens == one.tokens);
    }
}

}  // namespace

TEST_CASE("tensor_and_pipeline_parallel_match_one_device_f32") {
    RandomLlamaSpec spec;
    spec.dim = 128;
    spec.layers = 4;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 256;
    spec.vocab = 512;
    spec.dtype = kernels::dtype::f32;
    check_model(spec, "f32, GQA 4/2");
}

TEST_CASE("tensor_and_pipeline_parallel_match_one_device_f16_tied") {
    RandomLlamaSpec spec;
    spec.dim = 128;
    spec.layers = 3;
    spec.heads = 4;
    spec.kv_heads = 4;
    spec.ffn = 256;
    spec.vocab = 500;  // does not divide by 2: uneven vocabulary slices
    spec.tied = true;
    spec.dtype = kernels::dtype::f16;
    check_model(spec, "f16, no GQA, tied, odd vocabulary");
}

TEST_CASE("tensor_and_pipeline_parallel_match_one_device_q8_0_replicated_kv") {
    RandomLlamaSpec spec;
    spec.dim = 128;
    spec.layers = 2;
    spec.heads = 4;
    spec.kv_heads = 1;  // fewer KV heads than ranks: replicated
    spec.ffn = 256;
    spec.vocab = 512;
    spec.dtype = kernels::dtype::q8_0;
    check_model(spec, "q8_0, one KV head");
}

TEST_CASE("tensor_and_pipeline_parallel_match_one_device_bf16_qkv_bias") {
    RandomLlamaSpec spec;
    spec.arch = "qwen2";
    spec.dim = 128;
    spec.layers = 2;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 256;
    spec.vocab = 512;
    spec.qkv_bias = true;
    spec.dtype = kernels::dtype::bf16;
    check_model(spec, "bf16, qkv bias, NeoX RoPE");
}

TEST_CASE("planner_uses_every_device_by_default_and_refuses_tensor_1_with_numbers") {
    // The user's scenario in miniature: four devices whose memory lets the model fit only
    // across three or more of them.
    TempDir dir;
    RandomLlamaSpec spec;
    spec.dim = 256;
    spec.layers = 4;
    spec.heads = 4;
    spec.kv_heads = 4;
    spec.ffn = 1024;
    spec.vocab = 2048;
    auto model = make_model(dir, spec, "m.gguf");
    Config c = config_for(model);
    c.model.context_length = 64;
    c.scheduler.max_tokens_per_step = 64;
    c.scheduler.prefill_chunk = 64;
    c.scheduler.max_running_sequences = 4;
    c.devices.cpu = 4;
    c.devices.cpu_threads_per_device = 1;
    c.devices.memory_fraction = 1.0;
    // Each device gets 40% of the weights' bytes: a quarter of them plus workspace and KV fit,
    // a half does not, let alone all of them.
    {
        auto file = GgufFile::open(model);
        REQUIRE(file.ok());
        auto layout = load_llama_layout(**file);
        REQUIRE(layout.ok());
        c.devices.cpu_memory_limit = layout->weight_bytes() * 2 / 5;
    }
    auto all = ModelRuntime::load(c);
    REQUIRE_MESSAGE(all.ok(), all.status().message());
    CHECK((*all)->plan().parallel.devices() == 4);
    auto sink = std::make_shared<CollectSink>();
    REQUIRE((*all)->engine().submit(request({1, 2, 3}, 4, 0.0f, 1), sink).ok());
    run_until_done((*all)->engine(), {sink});
    CHECK(sink->info().tokens.size() == 4);
    all = Status(status_code::internal, "released");

    c.parallel.tensor = 1;
    auto one = ModelRuntime::load(c);
    REQUIRE_FALSE(one.ok());
    const std::string m = one.status().message();
    CAPTURE(m);
    CHECK(one.status().code() == status_code::out_of_memory);
    CHECK(m.find("needs") != std::string::npos);
    CHECK(m.find("usable") != std::string::npos);
    CHECK(m.find("and fits") != std::string::npos);
    CHECK(m.find("tensor = 1") != std::string::npos);
}

// Eight sequences of different lengths over two stages: the prefill step is cut into more
// micro-batches than stages (pipeline_micro_batches), and the decode steps of two groups of
// four run overlapped (Engine::decode_in_flight); every sequence's greedy tokens must be those
// of one device.
TEST_CASE("pipeline_with_more_micro_batches_than_stages_matches_one_device") {
    RandomLlamaSpec spec;
    spec.dim = 128;
    spec.layers = 4;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 256;
    spec.vocab = 512;
    spec.dtype = kernels::dtype::f32;
    TempDir dir;
    auto model = make_model(dir, spec, "m.gguf");
    auto run = [&](int cpu, int pp) {
        Config c = config_for(model);
        c.devices.cpu = cpu;
        c.devices.cpu_threads_per_device = 1;
        c.parallel.tensor = 1;
        c.parallel.pipeline = pp;
        auto rt = load(c);
        REQUIRE(rt->plan().parallel.pipeline == pp);
        std::vector<std::shared_ptr<CollectSink>> sinks;
        for (int s = 0; s < 8; ++s) {
            std::vector<int32_t> prompt;
            for (int t = 0; t < 5 + 7 * s; ++t) prompt.push_back(1 + (37 * s + 11 * t) % 500);
            sinks.push_back(std::make_shared<CollectSink>());
            REQUIRE(rt->engine().submit(request(prompt, 6, 0.0f, 1), sinks.back()).ok());
        }
        run_until_done(rt->engine(), sinks);
        // With two stages the decode steps of two groups of sequences were in flight at once.
        CHECK(rt->executor().peak_steps_in_flight() == (pp > 1 ? 2 : 1));
        std::vector<std::vector<int32_t>> tokens;
        for (const auto& s : sinks) tokens.push_back(s->info().tokens);
        return tokens;
    };
    REQUIRE(llmq::pipeline_micro_batches(2, 8, 8 * 5 + 7 * 28) > 2);
    const auto one = run(1, 1);
    const auto two = run(2, 2);
    for (size_t s = 0; s < one.size(); ++s) {
        CAPTURE(s);
        CHECK(one[s].size() == 6);
        CHECK(two[s] == one[s]);
    }
}

// The engine: continuous batching gives every request the same tokens it gets alone,
// preemption never corrupts, and KV blocks come back.
#include <doctest/doctest.h>

#include "engine_fixture.hpp"

using namespace llmq;
using namespace llmq::test;

namespace {

std::vector<int32_t> prompt_for(int i) {
    std::vector<int32_t> p;
    const int len = 3 + (i * 7) % 23;
    for (int t = 0; t < len; ++t) p.push_back(3 + (i * 31 + t * 17) % 500);
    return p;
}

GenerateRequest request_for(int i) {
    // Half greedy, half seeded sampling with the usual filters.
    GenerateRequest r = request(prompt_for(i), 4 + i % 9, i % 2 ? 0.9f : 0.0f, 1000 + i);
    r.sampling.top_k = 20;
    r.sampling.top_p = 0.9f;
    return r;
}

std::vector<int32_t> run_alone(Engine& e, GenerateRequest r) {
    auto sink = std::make_shared<CollectSink>();
    REQUIRE(e.submit(std::move(r), sink).ok());
    run_until_done(e, {sink});
    return sink->info().tokens;
}

// A 64-wide random model with 4 heads over 2 KV heads and 512 tokens.
std::string small_model(const TempDir& dir) {
    RandomLlamaSpec spec;
    spec.dim = 64;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.vocab = 512;
    return make_model(dir, spec, "m.gguf");
}

}  // namespace

TEST_CASE("engine_gives_the_same_tokens_alone_and_in_a_batch_of_32") {
    TempDir dir;
    const std::string model = small_model(dir);
    auto rt = load(config_for(model));
    Engine& e = rt->engine();

    std::vector<std::vector<int32_t>> alone;
    for (int i = 0; i < 32; ++i) alone.push_back(run_alone(e, request_for(i)));

    std::vector<std::shared_ptr<CollectSink>> sinks;
    for (int i = 0; i < 32; ++i) {
        sinks.push_back(std::make_shared<CollectSink>());
        REQUIRE(e.submit(request_for(i), sinks.back()).ok());
    }
    run_until_done(e, sinks);
    for (int i = 0; i < 32; ++i) {
        CAPTURE(i);
        CHECK(sinks[i]->info().reason == FinishReason::length);
        CHECK(sinks[i]->info().tokens == alone[i]);
    }
    CHECK(e.stats().kv_blocks_used == 0);
}

TEST_CASE("scheduler_preempts_when_blocks_run_out_and_outputs_stay_identical") {
    TempDir dir;
    RandomLlamaSpec spec;
    spec.vocab = 512;
    auto model = make_model(dir, spec, "m.gguf");
    Config c = config_for(model);
    c.model.context_length = 64;   // 4 blocks of 16 per sequence
    c.kv_cache.memory = 0;
    auto big = load(c);
    std::vector<std::vector<int32_t>> alone;
    for (int i = 0; i < 6; ++i) alone.push_back(run_alone(big->engine(), request(prompt_for(i), 40, 0.0f, 7)));
    big.reset();

    // Room for 8 blocks: two sequences of ~50 tokens at a time.
    const uint64_t per_block = 2ull * 2 /*layers*/ * 2 /*kv heads*/ * 16 /*head dim*/ * 16 * 2;
    c.kv_cache.memory = 8 * per_block;
    auto small = load(c);
    REQUIRE(small->plan().num_blocks == 8);
    Engine& e = small->engine();
    std::vector<std::shared_ptr<CollectSink>> sinks;
    for (int i = 0; i < 6; ++i) {
        sinks.push_back(std::make_shared<CollectSink>());
        REQUIRE(e.submit(request(prompt_for(i), 40, 0.0f, 7), sinks.back()).ok());
    }
    run_until_done(e, sinks);
    CHECK(e.stats().preemptions > 0);
    for (int i = 0; i < 6; ++i) {
        CAPTURE(i);
        CHECK(sinks[i]->info().tokens == alone[i]);
    }
    CHECK(e.stats().kv_blocks_used == 0);
}

TEST_CASE("engine_cancel_frees_blocks_and_reports_cancelled") {
    TempDir dir;
    RandomLlamaSpec spec;
    spec.vocab = 512;
    auto rt = load(config_for(make_model(dir, spec, "m.gguf")));
    Engine& e = rt->engine();
    auto sink = std::make_shared<CollectSink>();
    auto id = e.submit(request(prompt_for(1), 100, 0.0f, 1), sink);
    REQUIRE(id.ok());
    for (int i = 0; i < 5; ++i) e.step();
    CHECK(e.stats().kv_blocks_used > 0);
    e.cancel(*id);
    e.step();
    REQUIRE(sink->done());
    CHECK(sink->info().reason == FinishReason::cancelled);
    CHECK(e.stats().kv_blocks_used == 0);
}

TEST_CASE("engine_refuses_bad_requests_naming_the_field") {
    TempDir dir;
    RandomLlamaSpec spec;
    spec.vocab = 512;
    auto rt = load(config_for(make_model(dir, spec, "m.gguf")));
    Engine& e = rt->engine();
    auto sink = std::make_shared<CollectSink>();
    auto bad_token = e.submit(request({1, 2, 99999}, 4, 0.0f, 1), sink);
    REQUIRE_FALSE(bad_token.ok());
    CHECK(bad_token.status().message().find("prompt_tokens[2]") != std::string::npos);
    std::vector<int32_t> long_prompt(300, 5);
    auto too_long = e.submit(request(long_prompt, 4, 0.0f, 1), sink);
    REQUIRE_FALSE(too_long.ok());
    CHECK(too_long.status().message().find("context") != std::string::npos);
    auto r = request({1, 2}, 4, 0.0f, 1);
    r.sampling.temperature = std::numeric_limits<float>::quiet_NaN();
    auto nan = e.submit(r, sink);
    REQUIRE_FALSE(nan.ok());
    CHECK(nan.status().message().find("temperature") != std::string::npos);
}

TEST_CASE("engine_stops_at_a_stop_string_without_emitting_it") {
    TempDir dir;
    RandomLlamaSpec spec;
    spec.vocab = 512;
    auto rt = load(config_for(make_model(dir, spec, "m.gguf")));
    Engine& e = rt->engine();
    // Find what greedy generation produces, then stop on a piece of it.
    auto probe = std::make_shared<CollectSink>();
    REQUIRE(e.submit(request(prompt_for(2), 12, 0.0f, 1), probe).ok());
    run_until_done(e, {probe});
    const std::string full = probe->info().text;
    REQUIRE(full.size() >= 4);
    // A stop string of two ASCII bytes from the second half (stop strings must be valid UTF-8).
    std::string stop;
    for (size_t at = full.size() / 2; at + 1 < full.size() && stop.empty(); ++at)
        if (static_cast<unsigned char>(full[at]) < 0x80 && static_cast<unsigned char>(full[at + 1]) < 0x80 &&
            full[at] != ' ')
            stop = full.substr(at, 2);
    if (stop.empty()) {
        MESSAGE("the generated text has no ASCII pair to stop on; nothing to check");
        return;
    }
    const std::string expected = full.substr(0, full.find(stop));
    auto r = request(prompt_for(2), 12, 0.0f, 1);
    r.sampling.stop = {stop};
    auto sink = std::make_shared<CollectSink>();
    auto submitted = e.submit(r, sink);
    REQUIRE_MESSAGE(submitted.ok(), submitted.status().message());
    run_until_done(e, {sink});
    CHECK(sink->info().reason == FinishReason::stop);
    CHECK(sink->info().text == expected);
    CHECK(sink->streamed_text() == expected);
}

// [cuda] graphs = true on CPU devices (whose backend records no graphs) serves exactly what
// it serves off: the same tokens for a batch of 8, and the same first logits bit for bit.
TEST_CASE("engine_on_cpu_devices_serves_the_same_with_cuda_graphs_on") {
    TempDir dir;
    const std::string model = small_model(dir);
    auto run = [&](bool graphs) {
        Config c = config_for(model);
        c.devices.backend = DeviceBackend::cpu;
        c.cuda.graphs = graphs;
        auto rt = load(c);
        std::vector<std::shared_ptr<CollectSink>> sinks;
        for (int i = 0; i < 8; ++i) {
            sinks.push_back(std::make_shared<CollectSink>());
            sinks.back()->keep_logits_ = true;
            REQUIRE(rt->engine().submit(request_for(i), sinks.back()).ok());
        }
        run_until_done(rt->engine(), sinks);
        return sinks;
    };
    const auto off = run(false), on = run(true);
    for (int i = 0; i < 8; ++i) {
        CAPTURE(i);
        CHECK(on[i]->info().tokens == off[i]->info().tokens);
        REQUIRE_FALSE(off[i]->first_logits_.empty());
        CHECK(on[i]->first_logits_ == off[i]->first_logits_);
    }
}

// Whole-model runs for the cuda suite: a random model generated greedily through the engine
// on a given [devices] config, keeping the logits of every step, and the comparison of two
// runs (logits within a tolerance of the logit scale while both have fed the same tokens;
// greedy tokens equal wherever the reference's top-2 margin is wider than twice the tolerance,
// since a narrower one may flip on rounding alone, after which the runs may part).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "../runtime/engine/engine_fixture.hpp"

namespace llmq::cuda_model_testing {

using namespace llmq::test;

class StepLogitsSink final : public RequestSink {
public:
    bool wants_logits() const override { return true; }
    void on_logits(std::span<const float> l) override { logits.emplace_back(l.begin(), l.end()); }
    void on_token(int32_t token, std::string_view, float) override { tokens.push_back(token); }
    void on_finish(const FinishInfo& info) override {
        finish = info;
        done = true;
    }
    std::vector<std::vector<float>> logits;  // one per sampled token
    std::vector<int32_t> tokens;
    FinishInfo finish;
    bool done = false;
};

struct Run {
    std::vector<std::vector<float>> logits;
    std::vector<int32_t> tokens;
    std::string devices;  // the first device's name, for messages
};

inline Run generate(const Config& c, int32_t new_tokens = 12) {
    auto rt = load(c);
    auto sink = std::make_shared<StepLogitsSink>();
    const std::vector<int32_t> prompt = {1, 17, 230, 5, 99, 41, 7, 300, 12};
    REQUIRE(rt->engine().submit(request(prompt, new_tokens, 0.0f, 1), sink).ok());
    for (int guard = 0; guard < 100000 && !sink->done; ++guard) rt->engine().step();
    REQUIRE(sink->done);
    REQUIRE(sink->logits.size() == sink->tokens.size());
    return {sink->logits, sink->tokens, rt->devices().front()->info().name};
}

// Several requests at once (so decode steps batch them), each greedy with its own number of
// new tokens; one Run per prompt.
inline std::vector<Run> generate_many(const Config& c, const std::vector<std::vector<int32_t>>& prompts,
                                      const std::vector<int32_t>& new_tokens) {
    auto rt = load(c);
    std::vector<std::shared_ptr<StepLogitsSink>> sinks;
    for (size_t i = 0; i < prompts.size(); ++i) {
        sinks.push_back(std::make_shared<StepLogitsSink>());
        REQUIRE(rt->engine().submit(request(prompts[i], new_tokens.at(i), 0.0f, 1 + i), sinks.back()).ok());
    }
    auto all_done = [&] {
        for (const auto& s : sinks)
            if (!s->done) return false;
        return true;
    };
    for (int guard = 0; guard < 100000 && !all_done(); ++guard) rt->engine().step();
    REQUIRE(all_done());
    std::vector<Run> runs;
    for (const auto& s : sinks) {
        REQUIRE(s->logits.size() == s->tokens.size());
        runs.push_back({s->logits, s->tokens, rt->devices().front()->info().name});
    }
    return runs;
}

inline double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, double(std::fabs(x)));
    return m;
}

inline double top2_margin(const std::vector<float>& v) {
    float first = -INFINITY, second = -INFINITY;
    for (float x : v) {
        if (x > first) {
            second = first;
            first = x;
        } else if (x > second) {
            second = x;
        }
    }
    return double(first) - double(second);
}

// `got` against `want`: tolerance = relative × the reference's logit scale (at least 1).
inline void check_same_model(const Run& want, const Run& got, double relative) {
    REQUIRE(want.tokens.size() == got.tokens.size());
    const double tol = relative * std::max(1.0, max_abs(want.logits.front()));
    size_t compared = 0;
    for (size_t step = 0; step < want.tokens.size(); ++step) {
        CAPTURE(step);
        REQUIRE(want.logits[step].size() == got.logits[step].size());
        double diff = 0;
        for (size_t i = 0; i < want.logits[step].size(); ++i)
            diff = std::max(diff, std::fabs(double(want.logits[step][i]) - double(got.logits[step][i])));
        CHECK_MESSAGE(diff <= tol, got.devices, " vs ", want.devices, ": logits differ by ", diff,
                      ", tolerance ", tol);
        ++compared;
        if (top2_margin(want.logits[step]) <= 2 * tol) break;  // a tie within rounding: the runs may part here
        CHECK(got.tokens[step] == want.tokens[step]);
        if (got.tokens[step] != want.tokens[step]) break;
    }
    MESSAGE(got.devices, " vs ", want.devices, ": ", compared, " of ", want.tokens.size(), " steps compared");
}

// A model the CUDA plugins take: head_dim 64 (attention-cuda serves 64 and 128).
inline RandomLlamaSpec cuda_spec(kernels::dtype t) {
    RandomLlamaSpec spec;
    spec.dim = 256;
    spec.layers = 3;
    spec.heads = 4;
    spec.kv_heads = 2;
    spec.ffn = 512;
    spec.vocab = 512;
    spec.dtype = t;
    return spec;
}

inline Config cuda_config(const std::string& model, int devices_per_gpu, std::optional<int> tp,
                          std::optional<int> pp) {
    Config c = config_for(model);
    c.devices.backend = DeviceBackend::cuda;
    c.devices.cuda = CudaSelection{CudaSelection::Mode::list, {0}};
    c.devices.cuda_devices_per_gpu = devices_per_gpu;
    c.devices.cuda_memory_limit = 2ull << 30;
    c.parallel.tensor = tp;
    c.parallel.pipeline = pp;
    return c;
}

}  // namespace llmq::cuda_model_testing

// The whole model on a CUDA device against the CPU backend on the same random files: F32,
// F16, BF16 and Q8_0 weights (plus Qwen2 biases with NeoX RoPE, Llama 3.1 rope_freqs and a
// tied, odd vocabulary), and decode steps replayed as CUDA graphs ([cuda] graphs) against
// the same steps run op by op. Needs a GPU (exits 77 without one); never run yet
// (docs/cuda.md).
//
// Tolerances (× the logit scale): the CUDA backend rounds every GEMM input to the weight's
// type, f16 (2^-11) or bf16 (2^-8, also for Q8_0 weights), where the CPU multiplies f32 inputs,
// and three layers compound it; f32 models differ only in the order of f32 sums.
#include "cuda_model_support.hpp"

#include "llmq/runtime/plugin_swap.hpp"

using namespace llmq;
using namespace llmq::cuda_model_testing;

namespace {

void check_against_cpu(RandomLlamaSpec spec, double relative, const char* what) {
    CAPTURE(what);
    TempDir dir;
    const std::string model = make_model(dir, spec, "m.gguf");
    Config cpu = config_for(model);
    cpu.devices.backend = DeviceBackend::cpu;
    const Run want = generate(cpu);
    REQUIRE(want.devices == "cpu:0");
    const Run got = generate(cuda_config(model, 1, 1, 1));
    REQUIRE(got.devices == "cuda:0");
    check_same_model(want, got, relative);
}


// [cuda] graphs = true against false on the same file: three requests at once, of 24, 16 and
// 8 new tokens (decode steps of 3, then 2, then 1 sequences: buckets 4, 2 and 1, the first
// padded), contexts crossing
// block boundaries (block-table widths 1 to 4), and one request alone. The graphs run must
// have recorded graphs (its log says so) and never turned them off; the logits agree within
// `relative` of their scale (the padded batch may take another GEMM algorithm, so the bits
// may differ) and the greedy tokens agree where the margins allow.
void check_graphs_match_no_graphs(RandomLlamaSpec spec, double relative, const char* what) {
    CAPTURE(what);
    TempDir dir;
    const std::string model = make_model(dir, spec, "m.gguf");
    const std::vector<std::vector<int32_t>> prompts = {
        {1, 17, 230, 5, 99, 41, 7, 300, 12}, {3, 4, 5}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}};
    Config off = cuda_config(model, 1, 1, 1);
    off.cuda.graphs = false;
    Config on = off;
    on.cuda.graphs = true;
    std::vector<Run> want, got;
    const std::string off_log = logged(dir, [&] { want = generate_many(off, prompts, {24, 16, 8}); });
    const std::string on_log = logged(dir, [&] { got = generate_many(on, prompts, {24, 16, 8}); });
    CHECK(off_log.find("decode graph recorded") == std::string::npos);
    CHECK_MESSAGE(on_log.find("decode graph recorded for 4 sequences") != std::string::npos, on_log);
    CHECK_MESSAGE(on_log.find("decode graph recorded for 1 sequences") != std::string::npos, on_log);
    CHECK_MESSAGE(on_log.find("CUDA graphs off") == std::string::npos, on_log);
    CHECK_MESSAGE(on_log.find("did not match its recorded graph") == std::string::npos, on_log);
    REQUIRE(want.size() == got.size());
    for (size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        check_same_model(want[i], got[i], relative);
    }
    const std::string alone_log = logged(dir, [&] {
        check_same_model(generate(off), generate(on), relative);
    });
    CHECK_MESSAGE(alone_log.find("decode graph recorded for 1 sequences") != std::string::npos, alone_log);
}

}  // namespace

TEST_CASE("cuda_decode_graphs_match_no_graphs_f32") {
    check_graphs_match_no_graphs(cuda_spec(kernels::dtype::f32), 1e-4, "f32");
}

TEST_CASE("cuda_decode_graphs_match_no_graphs_bf16_q8_0") {
    check_graphs_match_no_graphs(cuda_spec(kernels::dtype::bf16), 1e-2, "bf16");
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::q8_0);
    spec.tied = true;
    spec.vocab = 500;
    check_graphs_match_no_graphs(spec, 1e-2, "q8_0, tied, vocabulary 500");
}

TEST_CASE("cuda_model_matches_cpu_backend_f32") {
    check_against_cpu(cuda_spec(kernels::dtype::f32), 1e-3, "f32");
}

TEST_CASE("cuda_model_matches_cpu_backend_f16_rope_freqs") {
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::f16);
    spec.rope_freqs = true;
    check_against_cpu(spec, 2e-2, "f16, rope_freqs");
}

TEST_CASE("cuda_model_matches_cpu_backend_bf16_qwen2_biases") {
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::bf16);
    spec.arch = "qwen2";
    spec.qkv_bias = true;
    check_against_cpu(spec, 5e-2, "bf16, qkv bias, NeoX RoPE");
}

TEST_CASE("cuda_model_matches_cpu_backend_q8_0_tied_odd_vocabulary") {
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::q8_0);
    spec.tied = true;
    spec.vocab = 500;
    check_against_cpu(spec, 5e-2, "q8_0, tied, vocabulary 500");
}

// The CPU backend multiplies block-quantized weights by x quantized to int8 per 32 values at
// decode; the CUDA backend by x rounded to bf16: the Q8_0 tolerance.
TEST_CASE("cuda_model_matches_cpu_backend_q4_k_and_q6_k") {
    check_against_cpu(cuda_spec(kernels::dtype::q4_k), 5e-2, "q4_k");
    check_against_cpu(cuda_spec(kernels::dtype::q6_k), 5e-2, "q6_k");
}

// Hot swap on CUDA devices is not built: the swapper says so at once and the loaded plugin
// keeps serving (the next step still runs).
TEST_CASE("cuda_plugin_swap_is_refused_naming_why_and_the_old_plugin_keeps_serving") {
    TempDir dir;
    const std::string model = make_model(dir, cuda_spec(kernels::dtype::bf16), "m.gguf");
    auto rt = load(cuda_config(model, 1, 1, 1));
    PluginSwapper swapper(rt->plugins(), SwapPolicy{});
    const SwapReport r = swapper.swap(LLMQ_PLUGIN_KIND_GEMM, "gemm-cuda", "test");
    CHECK_FALSE(r.swapped);
    CHECK(r.refused_at == "request");
    CHECK_MESSAGE(r.message.find("hot swap of a plugin on CUDA devices is not built yet") != std::string::npos,
                  r.message);
    auto sink = std::make_shared<StepLogitsSink>();
    REQUIRE(rt->engine().submit(request({1, 2, 3}, 2, 0.0f, 1), sink).ok());
    for (int guard = 0; guard < 1000 && !sink->done; ++guard) rt->engine().step();
    CHECK(sink->tokens.size() == 2);
}

TEST_CASE("cuda_backend_refuses_weight_types_its_plugins_do_not_take") {
    TempDir dir;
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::q2_k);
    const std::string model = make_model(dir, spec, "m.gguf");
    auto rt = ModelRuntime::load(cuda_config(model, 1, 1, 1));
    REQUIRE_FALSE(rt.ok());
    CHECK(rt.status().message().find("the CUDA backend takes f32, f16, bf16, q8_0, q4_0, q4_k, q5_k and q6_k weights") !=
          std::string::npos);
}

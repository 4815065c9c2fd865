// The whole model on a CUDA device against the CPU backend on the same random files: F32,
// F16, BF16 and Q8_0 weights (plus Qwen2 biases with NeoX RoPE, Llama 3.1 rope_freqs and a
// tied, odd vocabulary). Needs a GPU (exits 77 without one); never run yet (docs/cuda.md).
//
// Tolerances (× the logit scale): the CUDA backend rounds every GEMM input to the weight's
// type, f16 (2^-11) or bf16 (2^-8, also for Q8_0 weights), where the CPU multiplies f32 inputs,
// and three layers compound it; f32 models differ only in the order of f32 sums.
#include "cuda_model_support.hpp"

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

}  // namespace

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

TEST_CASE("cuda_backend_refuses_weight_types_its_plugins_do_not_take") {
    TempDir dir;
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::q4_k);
    const std::string model = make_model(dir, spec, "m.gguf");
    auto rt = ModelRuntime::load(cuda_config(model, 1, 1, 1));
    REQUIRE_FALSE(rt.ok());
    CHECK(rt.status().message().find("the CUDA backend takes f32, f16, bf16 and q8_0 weights") != std::string::npos);
}

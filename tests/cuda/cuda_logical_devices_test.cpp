// Tensor and pipeline parallelism on logical devices of one GPU ([devices]
// cuda_devices_per_gpu = 4, the device-memory communicator) give the same model as one CUDA
// device: TP=2, PP=2 and TP=2 x PP=2. Needs a GPU (exits 77 without one); never run yet.
//
// Tolerance: the all-reduce adds partial sums in another order than one GEMM does, which
// moves f32 values by ulps; where a GEMM input is then rounded to bf16/f16 such a move can flip
// one rounding (2^-8 of a value), hence 1e-2 for 16-bit weights against 1e-4 for f32.
#include "cuda_model_support.hpp"

using namespace llmq;
using namespace llmq::cuda_model_testing;

namespace {

void check_splits(RandomLlamaSpec spec, double relative, const char* what) {
    CAPTURE(what);
    TempDir dir;
    const std::string model = make_model(dir, spec, "m.gguf");
    const Run one = generate(cuda_config(model, 1, 1, 1));
    struct Split {
        int tp, pp;
    };
    for (Split s : {Split{2, 1}, Split{1, 2}, Split{2, 2}}) {
        CAPTURE(s.tp);
        CAPTURE(s.pp);
        const Run split = generate(cuda_config(model, 4, s.tp, s.pp));
        REQUIRE(split.devices == "cuda:0.0");
        check_same_model(one, split, relative);
    }
}

}  // namespace

TEST_CASE("cuda_logical_devices_tp_pp_match_one_device_f32") {
    check_splits(cuda_spec(kernels::dtype::f32), 1e-4, "f32");
}

TEST_CASE("cuda_logical_devices_tp_pp_match_one_device_bf16_one_kv_head") {
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::bf16);
    spec.kv_heads = 1;  // fewer KV heads than tensor ranks: replicated
    check_splits(spec, 1e-2, "bf16, one KV head");
}

TEST_CASE("cuda_logical_devices_tp_pp_match_one_device_q8_0_tied_odd_vocabulary") {
    RandomLlamaSpec spec = cuda_spec(kernels::dtype::q8_0);
    spec.tied = true;
    spec.vocab = 500;
    check_splits(spec, 1e-2, "q8_0, tied, vocabulary 500");
}

TEST_CASE("cuda_logical_devices_refuse_nccl_which_needs_a_gpu_per_rank") {
    TempDir dir;
    const std::string model = make_model(dir, cuda_spec(kernels::dtype::f32), "m.gguf");
    Config c = cuda_config(model, 2, 2, 1);
    c.devices.cuda_communicator = CudaCommunicator::nccl;
    auto rt = ModelRuntime::load(c);
    REQUIRE_FALSE(rt.ok());
    CHECK(rt.status().message().find("NCCL refuses two ranks on one GPU") != std::string::npos);
}

// The CUDA backend's fused ops (add_rms_norm, rope_kv_write: one kernel each) against the
// separate ops they replace in the forward pass, bit for bit, on cuda:0 through the seam.
// Needs a GPU (exits 77 without one); never run yet (docs/cuda.md).
#include "../runtime/devices/backend_fused_ops_check.hpp"

#include "llmq/runtime/device_selection.hpp"

using namespace llmq;

TEST_CASE("cuda_backend_fused_ops_match_separate_ops") {
    DevicesConfig d;
    d.backend = DeviceBackend::cuda;
    d.cuda = CudaSelection{CudaSelection::Mode::list, {0}};
    d.cuda_memory_limit = 1ull << 30;
    auto devices = make_devices(d);
    REQUIRE_MESSAGE(devices.ok(), devices.status().message());
    REQUIRE(devices->front()->info().name == "cuda:0");
    test::check_fused_ops_match_separate_ops(*devices->front());
}

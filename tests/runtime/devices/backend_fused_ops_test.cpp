// The CPU backend's fused ops (the seam's defaults) against the separate calls, bit for bit;
// the same check runs on cuda:0 in the cuda suite (cuda_backend_fused_ops_test.cpp).
#include "backend_fused_ops_check.hpp"

#include "llmq/runtime/device_selection.hpp"

using namespace llmq;

TEST_CASE("cpu_backend_fused_ops_match_separate_ops") {
    DevicesConfig d;
    d.backend = DeviceBackend::cpu;
    d.cpu = 1;
    d.cpu_threads_per_device = 2;
    auto devices = make_devices(d);
    REQUIRE_MESSAGE(devices.ok(), devices.status().message());
    test::check_fused_ops_match_separate_ops(*devices->front());
}

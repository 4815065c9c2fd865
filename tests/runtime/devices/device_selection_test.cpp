// [devices] backend on a machine without a GPU (CUDA_VISIBLE_DEVICES="" hides any GPU, so this
// runs the same everywhere): "cpu" and "auto" serve on CPU devices, auto saying in one log line
// that no GPU was found and why; "cuda" is a load error that says so before a weight is read.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "../engine/engine_fixture.hpp"
#include "llmq/runtime/device_selection.hpp"

using namespace llmq;
using namespace llmq::test;

namespace {

const bool no_gpu = [] {
    setenv("CUDA_VISIBLE_DEVICES", "", 1);  // before the CUDA runtime reads it
    return true;
}();

}  // namespace

TEST_CASE("devices_backend_cpu_makes_the_cpu_devices_of_the_config") {
    DevicesConfig d;
    d.backend = DeviceBackend::cpu;
    d.cpu = 3;
    d.cpu_threads_per_device = 1;
    auto devices = make_devices(d);
    REQUIRE_MESSAGE(devices.ok(), devices.status().message());
    REQUIRE(devices->size() == 3);
    for (const auto& device : *devices) CHECK(device->info().kind == DeviceKind::cpu);
    CHECK((*devices)[2]->info().name == "cpu:2");
    // An MPI rank holds one.
    auto one = make_devices(d, true);
    REQUIRE(one.ok());
    CHECK(one->size() == 1);
}

TEST_CASE("devices_auto_without_a_gpu_serves_on_cpu_devices_and_says_no_gpu_was_found") {
    TempDir dir;
    DevicesConfig d;  // backend = "auto" by default
    d.cpu = 2;
    d.cpu_threads_per_device = 1;
    Expected<std::vector<std::unique_ptr<Device>>> devices = internal_error("not run");
    const std::string log_text = logged(dir, [&] { devices = make_devices(d); });
    REQUIRE_MESSAGE(devices.ok(), devices.status().message());
    REQUIRE(devices->size() == 2);
    CHECK((*devices)[0]->info().kind == DeviceKind::cpu);
    CHECK(log_text.find("no GPU found (") != std::string::npos);
    CHECK(log_text.find("serving on 2 CPU device(s)") != std::string::npos);
    if (!cuda_backend_built()) CHECK(log_text.find("built without CUDA") != std::string::npos);
}

TEST_CASE("devices_backend_cuda_without_a_gpu_is_an_error_that_says_why") {
    DevicesConfig d;
    d.backend = DeviceBackend::cuda;
    auto devices = make_devices(d);
    REQUIRE_FALSE(devices.ok());
    const std::string m = devices.status().message();
    CAPTURE(m);
    CHECK(devices.status().code() == status_code::invalid_argument);
    CHECK(m.find("[devices] backend = \"cuda\" but no GPU was found: ") == 0);
    // The reason: the CUDA runtime's own, or the build's.
    CHECK(m.find(cuda_backend_built() ? "cudaGetDeviceCount" : "built without CUDA") != std::string::npos);
    CHECK(m.find("backend = \"auto\" or \"cpu\"") != std::string::npos);
}

TEST_CASE("model_load_with_backend_cuda_without_a_gpu_fails_naming_the_key") {
    TempDir dir;
    RandomLlamaSpec spec;
    spec.dim = 64;
    spec.layers = 1;
    spec.heads = 2;
    spec.kv_heads = 2;
    spec.ffn = 128;
    spec.vocab = 300;
    const std::string model = make_model(dir, spec, "m.gguf");
    Config c = config_for(model);
    c.devices.backend = DeviceBackend::cuda;
    auto rt = ModelRuntime::load(c);
    REQUIRE_FALSE(rt.ok());
    CHECK(rt.status().message().find("[devices] backend = \"cuda\" but no GPU was found") != std::string::npos);
    // The same file serves on the CPU with backend = "auto", exactly as before.
    c.devices.backend = DeviceBackend::automatic;
    c.devices.cpu_threads_per_device = 1;
    auto cpu = ModelRuntime::load(c);
    REQUIRE_MESSAGE(cpu.ok(), cpu.status().message());
    CHECK((*cpu)->devices()[0]->info().kind == DeviceKind::cpu);
    auto sink = std::make_shared<CollectSink>();
    REQUIRE((*cpu)->engine().submit(request({1, 5, 9}, 4, 0.0f, 1), sink).ok());
    run_until_done((*cpu)->engine(), {sink});
    CHECK(sink->info().tokens.size() == 4);
}

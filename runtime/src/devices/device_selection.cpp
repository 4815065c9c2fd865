#include "llmq/runtime/device_selection.hpp"

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"

#ifdef LLMQ_HAVE_CUDA
#include "cuda_communicators.hpp"
#include "cuda_device.hpp"
#endif

namespace llmq {

namespace {

std::vector<std::unique_ptr<Device>> cpu_devices(const DevicesConfig& config, bool one_device) {
    CpuDeviceOptions options = cpu_device_options(config);
    if (one_device) options.count = 1;
    return make_cpu_devices(options);
}

#ifdef LLMQ_HAVE_CUDA
// The GPUs as devices; an empty list (with *why) when there is none.
Expected<std::vector<std::unique_ptr<Device>>> cuda_devices(const DevicesConfig& config, bool one_device,
                                                            std::string* why) {
    auto specs = cuda_device_specs(config, why);
    if (!specs) return specs.status();
    std::vector<std::unique_ptr<Device>> out;
    if (specs->empty()) return out;
    const CudaDeviceSpec& first = specs->front();
    if (config.cuda_communicator == CudaCommunicator::nccl) {
        if (!nccl_built())
            return invalid_argument("[devices] cuda_communicator = \"nccl\" but this llmqd was built without NCCL "
                                    "(no libnccl/nccl.h at build time); use \"auto\" or \"device-memory\"");
        if (first.logical_count > 1)
            return invalid_argument("[devices] cuda_communicator = \"nccl\" with cuda_devices_per_gpu = " +
                                    std::to_string(first.logical_count) +
                                    ": NCCL refuses two ranks on one GPU; use \"device-memory\"");
    }
    for (const CudaDeviceSpec& spec : *specs) {
        auto device = CudaDevice::create(spec);
        if (!device) return device.status();
        out.push_back(std::move(*device));
        if (one_device) break;
    }
    return out;
}
#endif

}  // namespace

#ifdef LLMQ_HAVE_CUDA
bool cuda_backend_built() { return true; }
#else
bool cuda_backend_built() { return false; }
#endif

Expected<std::vector<std::unique_ptr<Device>>> make_devices(const DevicesConfig& config, bool one_device) {
    if (config.backend == DeviceBackend::cpu) return cpu_devices(config, one_device);
    std::string why;
#ifdef LLMQ_HAVE_CUDA
    auto gpus = cuda_devices(config, one_device, &why);
    if (!gpus) return gpus.status();
    if (!gpus->empty()) {
        log::info("devices: " + std::to_string(gpus->size()) + " CUDA device(s)");
        return std::move(*gpus);
    }
#else
    why = "this llmqd was built without CUDA (meson -Dcuda=disabled, or no nvcc at build time)";
#endif
    if (config.backend == DeviceBackend::cuda)
        return invalid_argument("[devices] backend = \"cuda\" but no GPU was found: " + why +
                                "; use backend = \"auto\" or \"cpu\" to serve on CPU devices");
    auto devices = cpu_devices(config, one_device);
    log::info("devices: no GPU found (" + why + "); serving on " + std::to_string(devices.size()) +
              " CPU device(s)");
    return devices;
}

}  // namespace llmq

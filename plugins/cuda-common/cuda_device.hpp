// The device a CUDA plugin instance serves, as init sees it: visible, its properties read
// once, and a label for the init log line ("cuda:0 NVIDIA H200 (sm_90, 132 SMs)").
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda_plugin_checks.hpp"
#include "llmq/kernels/cuda.hpp"

namespace llmq::cuda_plugin {

inline llmq_status query_device(const llmq_host* host, const char* plugin, cudaDeviceProp* props, std::string* label,
                                llmq_error* error) {
    std::string why;
    if (kernels::cuda::visible_device_count(&why) <= host->device_index)
        return fail(error, LLMQ_STATUS_DEVICE_ERROR, "%s init: cuda:%d is not visible (%s)", plugin, host->device_index,
                    why.empty() ? "fewer devices" : why.c_str());
    if (cudaError_t e = cudaGetDeviceProperties(props, host->device_index); e != cudaSuccess)
        return fail(error, LLMQ_STATUS_DEVICE_ERROR, "%s init: cudaGetDeviceProperties(cuda:%d): %s", plugin,
                    host->device_index, cudaGetErrorString(e));
    *label = "cuda:" + std::to_string(host->device_index) + " " + props->name + " (sm_" + std::to_string(props->major) +
             std::to_string(props->minor) + ", " + std::to_string(props->multiProcessorCount) + " SMs)";
    return LLMQ_OK;
}

// Logs `line` at INFO through the host table.
inline void log_info(const llmq_host* host, const std::string& line) {
    host->log(host->host_context, LLMQ_LOG_INFO, line.c_str());
}

}  // namespace llmq::cuda_plugin

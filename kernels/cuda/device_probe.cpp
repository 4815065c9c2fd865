// How many GPUs the process sees, with the reason when it sees none.
#include <cuda_runtime_api.h>

#include <string>

#include "llmq/kernels/cuda.hpp"

namespace llmq::kernels::cuda {

int visible_device_count(std::string* why) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (why != nullptr)
            *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky-free error so later calls start clean
        return 0;
    }
    if (count == 0 && why != nullptr) *why = "cudaGetDeviceCount: 0 devices";
    return count;
}

}  // namespace llmq::kernels::cuda

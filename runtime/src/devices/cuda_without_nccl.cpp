// Built instead of cuda_nccl_communicator.cpp where NCCL was not found: every CUDA group
// uses device-memory copies (the device selection refuses cuda_communicator = "nccl").
#include "cuda_communicators.hpp"

namespace llmq {

bool nccl_built() { return false; }

std::unique_ptr<CommunicatorGroup> make_nccl_group(int size, std::chrono::milliseconds timeout) {
    return make_device_memory_group(size, timeout);
}

}  // namespace llmq

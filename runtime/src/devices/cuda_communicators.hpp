// Communicator groups of CUDA devices in one process (Backend::local_group of a CudaBackend).
// Buffers are device memory of the calling rank's device; every call runs on that device's
// worker (CudaDevice::current()) and is bounded by the group's timeout.
//
// Device memory: for logical devices of one GPU (NCCL refuses two ranks on one GPU) and as
// the fallback anywhere. The ranks meet on the host (an in-process group), exchange buffer
// pointers and copy each other's buffers on their own streams (cudaMemcpyDefault: the GPUs of
// one process share a unified address space; copies between GPUs without peer access are
// staged by the driver). all_reduce_sum adds the ranks' contributions in rank order on each
// rank, so every rank gets the same bits.
//
// NCCL: one process drives all of its GPUs; each rank joins (ncclCommInitRankConfig,
// non-blocking) on its worker at its first call. Every collective is queued on the rank's
// stream and waited for up to the timeout; a communicator that hangs or fails is aborted
// with ncclCommAbort and the call returns `unavailable`. Only where llmq was built with NCCL.
#pragma once

#include <chrono>
#include <memory>

#include "llmq/runtime/communicator.hpp"

namespace llmq {

std::unique_ptr<CommunicatorGroup> make_device_memory_group(
    int size, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Whether this build has NCCL; without it make_nccl_group is not to be called (the device
// selection refuses [devices] cuda_communicator = "nccl").
bool nccl_built();
std::unique_ptr<CommunicatorGroup> make_nccl_group(int size,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace llmq

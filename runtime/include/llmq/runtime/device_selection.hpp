// The devices that serve, as [devices] chooses them (ModelRuntime::load calls this first).
//
// backend = "auto": every selected GPU ([devices] cuda, CUDA_VISIBLE_DEVICES applies), split
// into cuda_devices_per_gpu logical devices, when there is one; else the CPU devices of
// [devices] cpu, with one log line that says no GPU was found and why (no driver, no device,
// built without CUDA). "cpu": the CPU devices only. "cuda": the GPUs only; none is an error
// that says why. A CUDA device's memory capacity is its share of the GPU's memory free at
// start (cuda_memory_limit when that is less); the planner takes memory_fraction of it.
//
// Thread: the loading thread. The devices' workers run until the devices are destroyed.
#pragma once

#include <memory>
#include <vector>

#include "llmq/runtime/config.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

// Whether this build has the CUDA backend (meson found nvcc; -Dcuda=disabled turns it off).
bool cuda_backend_built();

// one_device: an MPI rank holds one device (the first of the selection).
[[nodiscard]] Expected<std::vector<std::unique_ptr<Device>>> make_devices(const DevicesConfig& config,
                                                                          bool one_device = false);

}  // namespace llmq

// What every CUDA plugin checks on the host before it enqueues anything: the host table of
// a CUDA device (ABI 1.1's GPU contract, see llmq_plugin.h) and the device tensors it is
// handed. Header-only and free of CUDA headers, so the tests run these checks on machines
// without a GPU.
#pragma once

#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>

#include "llmq_abi_dtypes.hpp"
#include "llmq_plugin.h"
#include "llmq_plugin_checks.hpp"

namespace llmq::cuda_plugin {

using plugin_checks::fail;

// Names and element sizes come from the dtype table (llmq/kernels/dtype.hpp).
inline const char* dtype_label(int32_t t) { return kernels::dtype_name(t); }

// Activation types a GPU plugin takes (the GPU contract): the table's float types, f32, f16
// and bf16.
inline bool is_activation(int32_t t) {
    const kernels::dtype_info* d = abi::dtype_of(t);
    return d != nullptr && d->is_float();
}
// Bytes of one element of a float or integer type (0 for block-quantized ones).
inline int64_t element_bytes(int32_t t) {
    const kernels::dtype_info* d = abi::dtype_of(t);
    return d != nullptr ? d->element_bytes() : 0;
}

// The largest power of two up to 256 that divides `address` (256 for 0).
inline uint32_t alignment_of(uintptr_t address) {
    uint32_t a = 256;
    while (a > 1 && address % a != 0) a /= 2;
    return a;
}

// A host table a CUDA plugin can serve: a 1.x host of at least this struct size, a CUDA
// device with a stream, and the functions the plugin uses.
inline llmq_status check_host(const llmq_host* host, const char* plugin, llmq_error* error) {
    if (host == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host table is NULL", plugin);
    if (host->struct_size < sizeof(llmq_host))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host.struct_size is %u, this plugin needs %zu",
                    plugin, host->struct_size, sizeof(llmq_host));
    if (LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version) != LLMQ_PLUGIN_ABI_MAJOR)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: host ABI major %u, plugin ABI major %u", plugin,
                    LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version), LLMQ_PLUGIN_ABI_MAJOR);
    if (LLMQ_PLUGIN_ABI_VERSION_MINOR(host->abi_version) < LLMQ_PLUGIN_ABI_GPU_CONTRACT_MINOR)
        return fail(error, LLMQ_STATUS_UNSUPPORTED,
                    "%s init: host ABI %u.%u predates the GPU contract (ABI 1.%u); this plugin needs it", plugin,
                    LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version), LLMQ_PLUGIN_ABI_VERSION_MINOR(host->abi_version),
                    LLMQ_PLUGIN_ABI_GPU_CONTRACT_MINOR);
    if (host->device_type != LLMQ_BACKEND_CUDA)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: device_type %d is not a CUDA device", plugin,
                    host->device_type);
    if (host->log == nullptr || host->alloc == nullptr || host->free == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host.log, host.alloc and host.free must be set",
                    plugin);
    if (host->stream == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "%s init: host.stream is NULL; the GPU contract needs the device's own stream", plugin);
    if (host->device_index < 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: device_index %d is negative", plugin,
                    host->device_index);
    return LLMQ_OK;
}

// A tensor on this plugin's GPU: `call` and `name` name it in messages ("matmul", "x").
inline llmq_status check_on_device(const llmq_tensor& t, int32_t device_index, const char* call, const char* name,
                                   llmq_error* error) {
    if (t.device_type != LLMQ_BACKEND_CUDA)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s: %s.device_type is %d, expected a CUDA tensor", call, name,
                    t.device_type);
    if (t.device_index != device_index)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s: %s is on cuda:%d, this instance serves cuda:%d", call,
                    name, t.device_index, device_index);
    return LLMQ_OK;
}

}  // namespace llmq::cuda_plugin

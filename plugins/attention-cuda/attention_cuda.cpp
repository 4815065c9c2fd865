// attention-cuda: paged attention on the GPU (ABI 1.1 GPU contract), a wrapper around
// kernels::cuda::paged_attention. The call checks its scalars and tensors on the host
// (attention_cuda_arguments.hpp), picks how many splits of the context to run from the
// scalars alone (the index tables stay on the device), grows its split workspace from the
// host table when a call needs more, and enqueues one kernel (two with splits) on the
// device's stream.
//
// Plugin TOML table ([plugins.attention-cuda]):
//   splits = 0        0: choose per call from the batch and the GPU's multiprocessors;
//                     n >= 1: always cut each context into n chunks (tests, tuning)
//
// None of this has run on a GPU yet (docs/cuda.md).
#include <cuda_runtime_api.h>

#include <cinttypes>
#include <exception>
#include <new>
#include <string>

#include "../cuda-common/cuda_device.hpp"
#include "../cuda-common/plugin_config.hpp"
#include "attention_cuda_arguments.hpp"
#include "llmq/kernels/cuda.hpp"
#include "llmq_plugin.h"

namespace {

namespace kc = llmq::kernels::cuda;
using llmq::cuda_plugin::fail;

constexpr const char* plugin_name = "attention-cuda";
constexpr const char* plugin_version = "1.0.0";

struct instance {
    const llmq_host* host = nullptr;
    cudaStream_t stream = nullptr;
    int32_t multiprocessors = 1;
    int32_t fixed_splits = 0;
    float* workspace = nullptr;
    int64_t workspace_floats = 0;
    ~instance() {
        if (workspace != nullptr) host->free(host->host_context, workspace);
    }
};

llmq_status read_config(const char* text, instance& self, llmq_error* error) {
    toml::table table;
    if (llmq_status s = llmq::cuda_plugin::parse_config(text, plugin_name, &table, error); s != LLMQ_OK) return s;
    for (const auto& [key, value] : table) {
        if (key != "splits")
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: unknown key '%s' (known: splits)", plugin_name,
                        std::string(key.str()).c_str());
        const auto* number = value.as_integer();
        if (number == nullptr || number->get() < 0 || number->get() > 256)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: splits must be an integer in [0, 256]",
                        plugin_name);
        self.fixed_splits = int32_t(number->get());
    }
    return LLMQ_OK;
}

llmq_status init(const llmq_host* host, void** out, llmq_error* error) {
    if (out == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: instance pointer is NULL", plugin_name);
    *out = nullptr;
    if (llmq_status s = llmq::cuda_plugin::check_host(host, plugin_name, error); s != LLMQ_OK) return s;
    try {
        auto* self = new instance;
        self->host = host;
        self->stream = static_cast<cudaStream_t>(host->stream);
        if (llmq_status s = read_config(host->config_toml, *self, error); s != LLMQ_OK) {
            delete self;
            return s;
        }
        cudaDeviceProp props{};
        std::string device;
        if (llmq_status s = llmq::cuda_plugin::query_device(host, plugin_name, &props, &device, error); s != LLMQ_OK) {
            delete self;
            return s;
        }
        self->multiprocessors = props.multiProcessorCount;
        llmq::cuda_plugin::log_info(host, std::string(plugin_name) + " " + plugin_version + ": " + device + ", splits " +
                                              (self->fixed_splits == 0 ? "per call" : std::to_string(self->fixed_splits)));
        *out = self;
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "%s init: out of memory", plugin_name);
    } catch (const std::exception& e) {
        return fail(error, LLMQ_STATUS_INTERNAL, "%s init: %s", plugin_name, e.what());
    }
}

void shutdown(void* self) { delete static_cast<instance*>(self); }

llmq_status attention(void* raw, const llmq_attention_args* a, llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: instance is NULL");
    if (llmq_status s = llmq::attention_cuda::check_attention(a, self->host->device_index, error); s != LLMQ_OK) return s;
    if (a->num_seqs == 0 || a->num_tokens == 0) return LLMQ_OK;

    const int64_t max_context = int64_t(a->max_blocks_per_seq) * a->block_size;
    const int32_t splits = self->fixed_splits > 0
                               ? self->fixed_splits
                               : llmq::attention_cuda::choose_splits(a->num_seqs, a->num_kv_heads, max_context, self->multiprocessors);
    const int64_t floats = kc::paged_attention_workspace_floats(a->num_tokens, a->num_heads, a->head_dim, splits);
    if (floats > self->workspace_floats) {
        void* grown = self->host->alloc(self->host->host_context, size_t(floats) * sizeof(float),
                                        LLMQ_PLUGIN_CUDA_ALLOC_ALIGNMENT);
        if (grown == nullptr)
            return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "attention: no %" PRId64 "-byte workspace for %d splits",
                        floats * int64_t(sizeof(float)), splits);
        if (self->workspace != nullptr) self->host->free(self->host->host_context, self->workspace);
        self->workspace = static_cast<float*>(grown);
        self->workspace_floats = floats;
    }

    kc::paged_attention_args p{};
    p.act = static_cast<llmq::kernels::dtype>(a->q.dtype);
    p.q = a->q.data;
    p.out = a->out.data;
    p.kv_t = static_cast<llmq::kernels::dtype>(a->kv_dtype);
    p.k_cache = a->k_cache;
    p.v_cache = a->v_cache;
    p.query_start = a->query_start;
    p.context_len = a->context_len;
    p.block_tables = a->block_tables;
    p.num_seqs = a->num_seqs;
    p.num_tokens = a->num_tokens;
    p.num_heads = a->num_heads;
    p.num_kv_heads = a->num_kv_heads;
    p.head_dim = a->head_dim;
    p.block_size = a->block_size;
    p.max_blocks_per_seq = a->max_blocks_per_seq;
    p.num_blocks = a->num_blocks;
    p.scale = a->scale;
    if (cudaError_t e = kc::paged_attention(p, splits, self->workspace, self->stream); e != cudaSuccess)
        return fail(error, e == cudaErrorInvalidValue ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_DEVICE_ERROR,
                    "attention: kernel launch (%d sequences, %d tokens, %d splits): %s: %s", a->num_seqs, a->num_tokens,
                    splits, cudaGetErrorName(e), cudaGetErrorString(e));
    return LLMQ_OK;
}

const llmq_attention_ops attention_ops = {sizeof(llmq_attention_ops), 0, attention, nullptr};

const llmq_plugin_descriptor descriptor = {
    sizeof(llmq_plugin_descriptor),
    LLMQ_PLUGIN_ABI_VERSION,
    LLMQ_PLUGIN_KIND_ATTENTION,
    LLMQ_BACKEND_CUDA,
    plugin_name,
    plugin_version,
    init,
    shutdown,
    nullptr,
    &attention_ops,
    nullptr,
};

}  // namespace

extern "C" LLMQ_PLUGIN_EXPORT const llmq_plugin_descriptor* llmq_plugin_entry(void) { return &descriptor; }

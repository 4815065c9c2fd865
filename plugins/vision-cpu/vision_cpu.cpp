// vision-cpu: the CPU vision plugin. Encodes one preprocessed image with a CLIP vision tower
// and LLaVA's MLP projector (clip_encoder.hpp), or with Llama 3.2 Vision's tiled encoder and
// projector (mllama_encoder.hpp, metadata architecture "mllama", variant = the aspect-ratio
// id), on the same GEMM and attention kernels as the text path.
//
// load_weights keeps the host's tensor pointers (the runtime owns them until shutdown) and
// widens the small vectors (norms, biases, class and position embeddings) to f32 once; the
// linear weights stay in the file's dtype and go to the GEMM as they are. encode checks the
// pixel and embedding tensors against the loaded model's sizes.
//
// Plugin TOML table ([plugins.vision-cpu]):
//   isa = "scalar" | "avx2" | "avx512" | "avx512_bf16"   force an ISA (refused if the CPU lacks it)
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <toml++/toml.h>

#include "clip_encoder.hpp"
#include "mllama_encoder.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq_plugin.h"
#include "llmq_plugin_checks.hpp"
#include "llmq_plugin_isa_config.hpp"

namespace {

namespace k = llmq::kernels;
using llmq::plugin_checks::fail;

constexpr const char* plugin_name = "vision-cpu";
constexpr const char* plugin_version = "1.0.0";

struct instance {
    const llmq_host* host = nullptr;
    k::isa isa = k::isa::scalar;
    std::unique_ptr<llmq::vision_cpu::clip_model> model;    // architecture "clip"
    std::unique_ptr<llmq::vision_cpu::mllama_model> mllama;  // or "mllama"
    std::vector<float> scratch;
};

llmq_status read_config(const char* text, instance& self, llmq_error* error) {
    return llmq::plugin_checks::read_isa_only_config(text, plugin_name, &self.isa, error);
}

llmq_status init(const llmq_host* host, void** out, llmq_error* error) {
    if (out == nullptr || host == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host table or instance pointer is NULL", plugin_name);
    *out = nullptr;
    if (host->struct_size < sizeof(llmq_host) || LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version) != LLMQ_PLUGIN_ABI_MAJOR)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: host table of %u bytes, ABI major %u; this plugin needs %zu, %u",
                    plugin_name, host->struct_size, LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version), sizeof(llmq_host),
                    LLMQ_PLUGIN_ABI_MAJOR);
    if (host->log == nullptr || host->parallel_for == nullptr || host->device_type != LLMQ_BACKEND_CPU)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: needs a CPU device with log and parallel_for", plugin_name);
    try {
        auto self = std::make_unique<instance>();
        self->host = host;
        self->isa = k::best_isa();
        if (llmq_status s = read_config(host->config_toml, *self, error); s != LLMQ_OK) return s;
        char line[128];
        std::snprintf(line, sizeof line, "%s %s: ISA %s", plugin_name, plugin_version, k::isa_name(self->isa));
        host->log(host->host_context, LLMQ_LOG_INFO, line);
        *out = self.release();
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "%s init: out of memory", plugin_name);
    }
}

void shutdown(void* self) { delete static_cast<instance*>(self); }

llmq_status load_weights(void* raw, const llmq_named_tensor* tensors, size_t count, const char* metadata_json,
                         llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr || (tensors == nullptr && count > 0))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "load_weights: instance or tensors is NULL");
    try {
        llmq_status status = LLMQ_OK;
        const nlohmann::json meta = nlohmann::json::parse(metadata_json ? metadata_json : "", nullptr, false);
        if (meta.is_object() && meta.value("architecture", "") == "mllama") {
            auto model = std::make_unique<llmq::vision_cpu::mllama_model>();
            if (!llmq::vision_cpu::load_mllama(tensors, count, metadata_json, *model, &status, error)) return status;
            self->model.reset();
            self->mllama = std::move(model);
            return LLMQ_OK;
        }
        auto model = std::make_unique<llmq::vision_cpu::clip_model>();
        if (!llmq::vision_cpu::load_clip(tensors, count, metadata_json, *model, &status, error)) return status;
        self->mllama.reset();
        self->model = std::move(model);
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "load_weights: out of memory");
    } catch (const std::exception& e) {
        return fail(error, LLMQ_STATUS_INTERNAL, "load_weights: %s", e.what());
    }
}

// A contiguous f32 CPU tensor of exactly these dimensions.
llmq_status check_dense(const llmq_tensor& t, const char* name, std::initializer_list<int64_t> dims, llmq_error* error) {
    if (t.device_type != LLMQ_BACKEND_CPU || t.dtype != LLMQ_DTYPE_F32 || t.data == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: %s must be f32 CPU memory", name);
    if (t.rank != int32_t(dims.size()))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: %s.rank is %d, expected %zu", name, t.rank, dims.size());
    int64_t stride = 4;
    for (int d = t.rank - 1; d >= 0; --d) {
        const int64_t want = dims.begin()[d];
        if (t.shape[d] != want)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: %s.shape[%d] is %" PRId64 ", the model needs %" PRId64,
                        name, d, t.shape[d], want);
        if (t.strides[d] != stride)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: %s must be contiguous (strides[%d] is %" PRId64 ")",
                        name, d, t.strides[d]);
        stride *= want;
    }
    return LLMQ_OK;
}

// A tiled encoder's image: pixels [tiles][3][I][I], embeddings [tiles * rows][N], variant the
// aspect-ratio id.
llmq_status encode_mllama(instance& self, const llmq_vision_args& a, llmq_error* error) {
    const auto& hp = self.mllama->hp;
    if (a.variant < 1 || a.variant > hp.grid_tiles.size())
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: aspect-ratio id (variant) %u is not in 1..%zu",
                    a.variant, hp.grid_tiles.size());
    llmq_status s = check_dense(a.pixels, "pixels", {hp.max_tiles, 3, hp.image_size, hp.image_size}, error);
    if (s == LLMQ_OK)
        s = check_dense(a.embeddings, "embeddings", {int64_t(hp.max_tiles) * hp.rows_per_tile(), hp.projection_dim}, error);
    if (s != LLMQ_OK) return s;
    try {
        llmq::vision_cpu::encode_mllama(*self.mllama, *self.host, self.isa, static_cast<const float*>(a.pixels.data),
                                        int32_t(a.variant), static_cast<float*>(a.embeddings.data), self.scratch);
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "encode: out of memory for the activations");
    }
}

llmq_status encode(void* raw, const llmq_vision_args* a, llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr || a == nullptr || a->struct_size < sizeof(llmq_vision_args))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: instance or args is NULL or args too small");
    if (!self->model && !self->mllama)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "encode: no weights loaded (call load_weights)");
    if (self->mllama) return encode_mllama(*self, *a, error);
    if (a->variant != 0)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "encode: variant %u (a tiled encoder's aspect ratio) is not clip's",
                    a->variant);
    const auto& hp = self->model->hp;
    llmq_status s = check_dense(a->pixels, "pixels", {3, hp.image_size, hp.image_size}, error);
    if (s == LLMQ_OK) s = check_dense(a->embeddings, "embeddings", {hp.patches(), hp.projection_dim}, error);
    if (s != LLMQ_OK) return s;
    try {
        llmq::vision_cpu::encode_clip(*self->model, *self->host, self->isa, static_cast<const float*>(a->pixels.data),
                                      static_cast<float*>(a->embeddings.data), self->scratch);
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "encode: out of memory for the activations");
    }
}

const llmq_vision_ops vision_ops = {sizeof(llmq_vision_ops), 0, load_weights, encode};

const llmq_plugin_descriptor descriptor = {
    sizeof(llmq_plugin_descriptor), LLMQ_PLUGIN_ABI_VERSION, LLMQ_PLUGIN_KIND_VISION, LLMQ_BACKEND_CPU, plugin_name,
    plugin_version, init, shutdown, nullptr, nullptr, &vision_ops};

}  // namespace

extern "C" LLMQ_PLUGIN_EXPORT const llmq_plugin_descriptor* llmq_plugin_entry(void) { return &descriptor; }

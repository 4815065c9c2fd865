// A plugin instance bound to one device, and the one place plugin status codes become
// runtime Status values.
#include <cstddef>
#include <cstring>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/plugin_host.hpp"

namespace llmq {

namespace {

void host_log(void* ctx, int32_t level, const char* message) {
    auto* self = static_cast<PluginInstance*>(ctx);
    std::string line = "plugin " + self->library().name() + " on " +
                       self->device().info().name + ": " + (message ? message : "");
    log::level l = level <= LLMQ_LOG_ERROR  ? log::level::error
                   : level == LLMQ_LOG_WARN ? log::level::warn
                   : level == LLMQ_LOG_INFO ? log::level::info
                                            : log::level::debug;
    log::write(l, line);
}

void* host_alloc(void* ctx, size_t bytes, size_t alignment) {
    auto* self = static_cast<PluginInstance*>(ctx);
    return self->device().allocate(bytes, alignment, nullptr);
}

void host_free(void* ctx, void* p) { static_cast<PluginInstance*>(ctx)->device().deallocate(p); }

void host_parallel_for(void* ctx, int64_t n, llmq_range_fn fn, void* arg) {
    static_cast<PluginInstance*>(ctx)->device().parallel_for(n, fn, arg);
}

std::string message_of(const llmq_error& e) {
    return std::string(e.message, strnlen(e.message, sizeof e.message));
}

}  // namespace

Expected<std::shared_ptr<PluginInstance>> PluginInstance::create(
    std::shared_ptr<PluginLibrary> lib, Device& device, std::string config_toml) {
    std::shared_ptr<PluginInstance> p(new PluginInstance());
    p->lib_ = std::move(lib);
    p->device_ = &device;
    p->config_toml_ = std::move(config_toml);
    llmq_host& h = p->host_;
    h.struct_size = sizeof(llmq_host);
    h.abi_version = LLMQ_PLUGIN_ABI_VERSION;
    h.host_context = p.get();
    h.log = host_log;
    h.alloc = host_alloc;
    h.free = host_free;
    h.parallel_for = host_parallel_for;
    h.device_type = device.backend();
    h.device_index = device.info().index;
    h.num_threads = device.info().threads;
    h.stream = device.stream();
    h.config_toml = p->config_toml_.c_str();

    llmq_error error{};
    const auto& d = p->lib_->descriptor();
    device.make_current();
    llmq_status s = d.init(&p->host_, &p->instance_, &error);
    if (s != LLMQ_OK) {
        p->instance_ = nullptr;
        std::string m = message_of(error);
        Status st = p->convert(s, error, "init");
        return Status(st.code(), "plugin " + p->lib_->path() + " (" + d.name + "): init on " +
                                     device.info().name + " failed: " +
                                     (m.empty() ? std::string("no message") : m));
    }
    return p;
}

PluginInstance::~PluginInstance() {
    if (lib_ && instance_) lib_->descriptor().shutdown(instance_);
}

Status PluginInstance::convert(llmq_status status, const llmq_error& error, const char* what) {
    if (status == LLMQ_OK) return {};
    errors_.fetch_add(1, std::memory_order_relaxed);
    std::string m = "plugin " + lib_->name() + " " + what + ": " + message_of(error);
    switch (status) {
        case LLMQ_STATUS_INVALID_ARGUMENT: return invalid_argument(m);
        case LLMQ_STATUS_UNSUPPORTED: return unsupported(m);
        case LLMQ_STATUS_OUT_OF_MEMORY: return out_of_memory(m);
        case LLMQ_STATUS_DEVICE_ERROR: return io_error(m);
        default: return internal_error(m + " (status " + std::to_string(status) + ")");
    }
}

Status PluginInstance::matmul(const llmq_matmul_args& args) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    llmq_error error;
    error.message[0] = '\0';
    return convert(lib_->descriptor().gemm->matmul(instance_, &args, &error), error, "matmul");
}

Status PluginInstance::attention(const llmq_attention_args& args) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    llmq_error error;
    error.message[0] = '\0';
    return convert(lib_->descriptor().attention->attention(instance_, &args, &error), error,
                   "attention");
}

bool PluginInstance::has_cross_attention() const {
    const llmq_attention_ops* ops = lib_->descriptor().attention;
    return ops && ops->struct_size >= offsetof(llmq_attention_ops, cross_attention) + sizeof ops->cross_attention &&
           ops->cross_attention != nullptr;
}

Status PluginInstance::cross_attention(const llmq_cross_attention_args& args) {
    if (!has_cross_attention())
        return unsupported("attention plugin '" + std::string(lib_->descriptor().name) +
                           "' has no cross_attention (ABI 1.2); a model with cross-attention layers (mllama) "
                           "needs one, e.g. attention-cpu");
    calls_.fetch_add(1, std::memory_order_relaxed);
    llmq_error error;
    error.message[0] = '\0';
    return convert(lib_->descriptor().attention->cross_attention(instance_, &args, &error), error,
                   "cross_attention");
}

Status PluginInstance::vision_load_weights(const void* key, std::span<const llmq_named_tensor> tensors,
                                           const std::string& metadata_json) {
    if (key != nullptr && key == vision_weights_) return {};
    llmq_error error;
    error.message[0] = '\0';
    vision_weights_ = nullptr;
    LLMQ_TRY(convert(lib_->descriptor().vision->load_weights(instance_, tensors.data(), tensors.size(),
                                                             metadata_json.c_str(), &error),
                     error, "load_weights"));
    vision_weights_ = key;
    return {};
}

Status PluginInstance::encode(const llmq_vision_args& args) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    llmq_error error;
    error.message[0] = '\0';
    return convert(lib_->descriptor().vision->encode(instance_, &args, &error), error, "encode");
}

}  // namespace llmq

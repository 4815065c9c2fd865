// The plugin host: loads kernel plugins (shared libraries speaking plugins/llmq_plugin.h),
// checks them, creates one instance per device, and publishes the set the engine uses.
//
// Loading checks, in order, each refusal naming the file and the reason:
//   the path exists and is a regular file under the size cap, read once (plugin_file.hpp);
//   dlopen of that copy succeeds (else: not a shared library, or
//   an unresolved symbol); the entry symbol exists; the descriptor is not NULL; its ABI
//   major equals ours and its minor is not newer; struct_size covers what ABI 1.0 defines;
//   kind and backend are the ones asked for; name/version/init/shutdown are present; the
//   function table for its kind is present, large enough, and its functions non-NULL.
// Then init runs once per device; a failing init is a refusal with the plugin's message.
//
// The engine takes a snapshot() of the published PluginSet at the start of every step and
// holds it to the step's end; publish() swaps in a new set atomically, and the old set's
// instances shut down (and libraries close) when the last snapshot holding them is dropped.
// Replacing one plugin while serving (probe, load, init, canary, publish, retire) is
// PluginSwapper's job (plugin_swap.hpp); PluginHost only publishes what it is given.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "llmq/runtime/device.hpp"
#include "llmq/runtime/plugin_file.hpp"
#include "llmq/runtime/status.hpp"
#include "llmq_plugin.h"

namespace llmq {

const char* plugin_kind_name(int32_t kind);    // "gemm" | "attention" | "vision" | "unknown"
const char* backend_name(int32_t backend);     // "cpu" | "cuda" | "unknown"
// "gemm" → LLMQ_PLUGIN_KIND_GEMM; 0 when unknown.
int32_t plugin_kind_from_name(std::string_view name);

// One dlopen'ed plugin library. Closed (dlclose) when the last owner lets go.
class PluginLibrary {
public:
    // Load and check the plugin read into `file` (plugin_file.hpp) as a plugin of `kind` for
    // `backend`: dlopen of the file's sealed copy (/proc/self/fd/N), never of its name, so a
    // file rebuilt or replaced under the same name changes nothing here and gets a new handle
    // when it is read again.
    static Expected<std::shared_ptr<PluginLibrary>> load(const PluginFile& file, int32_t kind,
                                                         int32_t backend);
    // PluginFile::open(path, max_file_size), then the above.
    static Expected<std::shared_ptr<PluginLibrary>> load(const std::string& path, int32_t kind,
                                                         int32_t backend,
                                                         uint64_t max_file_size = PluginFile::default_max_size);
    ~PluginLibrary();

    const llmq_plugin_descriptor& descriptor() const { return *descriptor_; }
    const std::string& path() const { return path_; }
    std::string name() const { return descriptor_->name; }
    std::string version() const { return descriptor_->version; }

private:
    PluginLibrary() = default;
    void* handle_ = nullptr;
    const llmq_plugin_descriptor* descriptor_ = nullptr;
    std::string path_;
    int fd_ = -1;  // this library's descriptor for the file's sealed copy (see plugin_library.cpp)
};

// A plugin initialised for one device. Calls come from that device's worker thread.
class PluginInstance {
public:
    static Expected<std::shared_ptr<PluginInstance>> create(std::shared_ptr<PluginLibrary> lib,
                                                            Device& device,
                                                            std::string config_toml);
    ~PluginInstance();

    Status matmul(const llmq_matmul_args& args);
    Status attention(const llmq_attention_args& args);
    // Whether the attention plugin has cross_attention (ABI 1.2, optional), and the call;
    // unsupported naming the plugin when it has none.
    bool has_cross_attention() const;
    Status cross_attention(const llmq_cross_attention_args& args);
    // Vision plugins: hand over the encoder's weights (llmq_vision_ops.load_weights) unless
    // the weights named by `key` (their owner; non-null) were the last this instance took, so
    // that a caller may call it before every encode and a freshly swapped-in instance gets
    // them once. Then encode one image. Thread: the device's worker.
    Status vision_load_weights(const void* key, std::span<const llmq_named_tensor> tensors,
                               const std::string& metadata_json);
    Status encode(const llmq_vision_args& args);

    const PluginLibrary& library() const { return *lib_; }
    std::shared_ptr<PluginLibrary> library_ptr() const { return lib_; }
    Device& device() const { return *device_; }
    uint64_t calls() const { return calls_.load(); }
    uint64_t errors() const { return errors_.load(); }

private:
    PluginInstance() = default;
    Status convert(llmq_status status, const llmq_error& error, const char* what);

    std::shared_ptr<PluginLibrary> lib_;
    Device* device_ = nullptr;
    std::string config_toml_;
    llmq_host host_{};
    void* instance_ = nullptr;
    const void* vision_weights_ = nullptr;  // the key of the weights load_weights last took
    std::atomic<uint64_t> calls_{0};
    std::atomic<uint64_t> errors_{0};
};

// The plugins one step uses: for each device (by position in the device group), one
// instance per kind. vision may be empty.
struct PluginSet {
    struct PerDevice {
        std::shared_ptr<PluginInstance> gemm;
        std::shared_ptr<PluginInstance> attention;
        std::shared_ptr<PluginInstance> vision;
    };
    std::vector<PerDevice> devices;
    std::chrono::system_clock::time_point gemm_since, attention_since, vision_since;

    // The instance of `kind` on device `index` (nullptr when none); and the time it came in.
    const std::shared_ptr<PluginInstance>& of(int32_t kind, size_t index) const;
    std::chrono::system_clock::time_point since(int32_t kind) const;
};

// Which plugin serves each (kind, backend): every device gets the plugins of its own
// backend, so one device group may mix CPU and CUDA devices.
struct PluginChoice {
    std::string dir;        // where plugin names are looked up
    // CPU devices' plugins ([plugins] gemm / attention / vision).
    std::string gemm = "gemm-cpu";
    std::string attention = "attention-cpu";
    std::string vision;     // empty: none
    // CUDA devices' plugins ([plugins.cuda] gemm / attention / vision).
    std::string cuda_gemm = "gemm-cuda";
    std::string cuda_attention = "attention-cuda";
    std::string cuda_vision;
    // The plugin of `kind` (llmq_plugin_kind) for devices of `backend` (llmq_backend): a name
    // or a path; "" when there is none (no vision plugin, an unknown kind or backend).
    const std::string& name(int32_t kind, int32_t backend) const;
    // Per-plugin TOML text, by plugin name.
    std::vector<std::pair<std::string, std::string>> plugin_tables;
    // Plugin files larger than this are refused ([plugins] max_file_size).
    uint64_t max_file_size = PluginFile::default_max_size;
    // Load and init each plugin in a probe process first (plugin_probe.hpp), so that one whose
    // constructors or init crash is refused with the reason instead of taking this process
    // down. [plugins] probe sets it for llmqd.
    bool probe = false;
};

// The default plugin folder: $LLMQ_PLUGIN_DIR, else the build's plugin folder when this
// binary runs from the build tree, else the plugin folder of the prefix this binary is installed
// in (<prefix>/sbin/llmqd → <prefix>/<libdir>/llmq/plugins) when it exists, else the configured
// install folder.
std::string default_plugin_dir();
// "gemm-cpu" → "<dir>/llmq-gemm-cpu.so"; a value containing '/' is taken as a path.
std::string plugin_path(const std::string& dir, const std::string& name_or_path);

class PluginHost {
public:
    // Load the chosen plugins for every device. Fails, naming the plugin, when any refuses.
    static Expected<std::unique_ptr<PluginHost>> create(const PluginChoice& choice,
                                                        std::vector<Device*> devices);

    // The current set; hold it for a whole step. Thread-safe, cheap.
    std::shared_ptr<const PluginSet> snapshot() const;
    // Replace the current set (between steps). Thread-safe.
    void publish(std::shared_ptr<const PluginSet> set);
    // Replace the plugin of one kind, keeping the others: `instances` holds one instance per
    // device, in device order. Returns the set that was current, so that the caller can wait
    // for the last step holding it and retire it on its own thread. Thread-safe.
    std::shared_ptr<const PluginSet> publish_kind(int32_t kind,
                                                  std::vector<std::shared_ptr<PluginInstance>> instances);
    // How many publish_kind() calls replaced a plugin since start (swaps and reloads). Thread-safe.
    uint64_t swaps() const { return swaps_.load(); }

    // Reload requests (SIGHUP): whoever can reload (the daemon's plugin commands) installs a
    // handler; request_reload calls it, or logs that this process cannot reload. The handler
    // must return quickly (queue the work). Thread-safe; the handler runs on the caller's thread.
    void set_reload_handler(std::function<void(const std::string& why)> handler);
    void request_reload(const std::string& why);

    const std::vector<Device*>& devices() const { return devices_; }
    const PluginChoice& choice() const { return choice_; }
    // TOML text of a plugin's own table ("" when none).
    std::string table_for(const std::string& plugin_name) const;

private:
    PluginChoice choice_;
    std::vector<Device*> devices_;
    mutable std::mutex mutex_;
    std::shared_ptr<const PluginSet> current_;
    std::function<void(const std::string&)> reload_handler_;  // guarded by mutex_
    std::atomic<uint64_t> swaps_{0};
};

}  // namespace llmq

// Loading and checking one plugin library; see plugin_host.hpp for the order of checks.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/plugin_host.hpp"

namespace llmq {

const char* plugin_kind_name(int32_t kind) {
    switch (kind) {
        case LLMQ_PLUGIN_KIND_GEMM: return "gemm";
        case LLMQ_PLUGIN_KIND_ATTENTION: return "attention";
        case LLMQ_PLUGIN_KIND_VISION: return "vision";
    }
    return "unknown";
}

const char* backend_name(int32_t backend) {
    switch (backend) {
        case LLMQ_BACKEND_CPU: return "cpu";
        case LLMQ_BACKEND_CUDA: return "cuda";
    }
    return "unknown";
}

int32_t plugin_kind_from_name(std::string_view name) {
    if (name == "gemm") return LLMQ_PLUGIN_KIND_GEMM;
    if (name == "attention") return LLMQ_PLUGIN_KIND_ATTENTION;
    if (name == "vision") return LLMQ_PLUGIN_KIND_VISION;
    return 0;
}

namespace {

std::string version_text(uint32_t v) {
    return std::to_string(LLMQ_PLUGIN_ABI_VERSION_MAJOR(v)) + "." +
           std::to_string(LLMQ_PLUGIN_ABI_VERSION_MINOR(v));
}

// Copy the library to a private file so that dlopen gives a fresh handle even when a
// library of the same path is already loaded (a rebuilt plugin under the same name).
Expected<std::string> make_private_copy(const std::string& path) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = (tmp && *tmp) ? tmp : "/tmp";
    std::string pattern = dir + "/llmq-plugin-XXXXXX.so";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    int out = mkstemps(name.data(), 3);
    if (out < 0) return io_error("cannot create a private copy of " + path + " in " + dir);
    int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        ::close(out);
        ::unlink(name.data());
        return io_error("cannot read " + path);
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(in, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0 || ::write(out, buf, static_cast<size_t>(n)) != n) {
            ::close(in);
            ::close(out);
            ::unlink(name.data());
            return io_error("cannot copy " + path + " to a private file");
        }
    }
    ::close(in);
    ::fchmod(out, 0500);
    ::close(out);
    return std::string(name.data());
}

}  // namespace

Expected<std::shared_ptr<PluginLibrary>> PluginLibrary::load(const std::string& path,
                                                             int32_t kind, int32_t backend,
                                                             bool private_copy) {
    const std::string who = "plugin " + path;
    std::error_code ec;
    auto st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st))
        return not_found(who + ": no such file; check [plugins] dir and the plugin name");
    if (!std::filesystem::is_regular_file(st))
        return invalid_argument(who + ": not a regular file");

    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->path_ = path;
    std::string open_path = path;
    if (private_copy) {
        auto copy = make_private_copy(path);
        if (!copy) return copy.status();
        lib->private_path_ = *copy;
        open_path = *copy;
    }

    // RTLD_LOCAL: plugins never see each other's symbols; RTLD_NOW: an unresolved symbol
    // is a refusal now, not a crash in the middle of a step.
    lib->handle_ = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    // The mapping holds the private copy from here on; its name goes now, so that nothing is
    // left behind in the temporary folder even when this process is killed.
    if (!lib->private_path_.empty()) ::unlink(lib->private_path_.c_str());
    if (!lib->handle_) {
        const char* e = dlerror();
        std::string reason = e ? e : "unknown dlopen error";
        // dlerror names the (private) path; name the user's file instead.
        if (!lib->private_path_.empty()) {
            for (size_t at; (at = reason.find(lib->private_path_)) != std::string::npos;)
                reason.replace(at, lib->private_path_.size(), path);
        }
        return corrupt(who + ": cannot be loaded as a shared library (" + reason + ")");
    }
    dlerror();
    void* sym = dlsym(lib->handle_, LLMQ_PLUGIN_ENTRY_SYMBOL);
    if (!sym)
        return corrupt(who + ": missing entry symbol " LLMQ_PLUGIN_ENTRY_SYMBOL
                             "; it is not an llmq plugin");
    auto entry = reinterpret_cast<llmq_plugin_entry_fn>(sym);
    const llmq_plugin_descriptor* d = entry();
    if (!d) return corrupt(who + ": " LLMQ_PLUGIN_ENTRY_SYMBOL " returned no descriptor");

    // The version fields are the first two members in every ABI major; read them first.
    const uint32_t major = LLMQ_PLUGIN_ABI_VERSION_MAJOR(d->abi_version);
    const uint32_t minor = LLMQ_PLUGIN_ABI_VERSION_MINOR(d->abi_version);
    if (major != LLMQ_PLUGIN_ABI_MAJOR || minor > LLMQ_PLUGIN_ABI_MINOR)
        return unsupported(who + ": built for plugin ABI " + version_text(d->abi_version) +
                           ", this runtime speaks ABI " +
                           version_text(LLMQ_PLUGIN_ABI_VERSION) +
                           "; rebuild the plugin against this llmq_plugin.h");
    if (d->struct_size < sizeof(llmq_plugin_descriptor))
        return unsupported(who + ": descriptor struct_size is " + std::to_string(d->struct_size) +
                           " bytes, ABI " + version_text(LLMQ_PLUGIN_ABI_VERSION) + " needs " +
                           std::to_string(sizeof(llmq_plugin_descriptor)));
    if (!d->name || !d->version || !d->init || !d->shutdown)
        return corrupt(who + ": descriptor lacks name, version, init or shutdown");
    if (d->kind != kind)
        return invalid_argument(who + " (" + d->name + "): is a " + plugin_kind_name(d->kind) +
                                " plugin, a " + plugin_kind_name(kind) + " plugin was asked for");
    if (d->backend != backend)
        return invalid_argument(who + " (" + d->name + "): is for the " +
                                backend_name(d->backend) + " backend, the device is " +
                                backend_name(backend));
    switch (kind) {
        case LLMQ_PLUGIN_KIND_GEMM:
            if (!d->gemm || d->gemm->struct_size < sizeof(llmq_gemm_ops) || !d->gemm->matmul)
                return corrupt(who + ": gemm function table missing, too small or incomplete");
            break;
        case LLMQ_PLUGIN_KIND_ATTENTION:
            if (!d->attention || d->attention->struct_size < sizeof(llmq_attention_ops) ||
                !d->attention->attention)
                return corrupt(who +
                               ": attention function table missing, too small or incomplete");
            break;
        case LLMQ_PLUGIN_KIND_VISION:
            if (!d->vision || d->vision->struct_size < sizeof(llmq_vision_ops) ||
                !d->vision->encode || !d->vision->load_weights)
                return corrupt(who + ": vision function table missing, too small or incomplete");
            break;
        default:
            return invalid_argument(who + ": unknown plugin kind " + std::to_string(kind));
    }
    lib->descriptor_ = d;
    return lib;
}

PluginLibrary::~PluginLibrary() {
    if (handle_) dlclose(handle_);
}

}  // namespace llmq

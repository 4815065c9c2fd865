// Loading and checking one plugin library; see plugin_host.hpp for the order of checks.
#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/plugin_file.hpp"
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

// dlopen matches a name against the libraries it has loaded before it looks at the file, so a
// "/proc/self/fd/N" that an earlier copy used would return that library if it is still loaded
// (one that cannot be unloaded, say). Each PluginLibrary holds a descriptor of its own for the
// copy, open as long as it lives, so no other live library has its name; a loaded library that
// still has the name is such a leftover, and the descriptor moves to another number. A library
// found by the file's identity instead (the same copy loaded again) is the right one to share.
// Returns the descriptor (owned by the caller) and its name; -1 when none could be made.
int descriptor_for_dlopen(int file_fd, std::string& name) {
    int fd = ::fcntl(file_fd, F_DUPFD_CLOEXEC, 3);
    for (int attempt = 0; fd >= 0 && attempt < 64; ++attempt) {
        name = "/proc/self/fd/" + std::to_string(fd);
        void* loaded = dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
        if (!loaded) {
            dlerror();
            return fd;
        }
        link_map* map = nullptr;
        const bool same_name = dlinfo(loaded, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name &&
                               name == map->l_name;
        dlclose(loaded);
        if (!same_name) return fd;
        const int next = ::fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
        ::close(fd);
        fd = next;
    }
    if (fd >= 0) ::close(fd);
    return -1;
}

}  // namespace

Expected<std::shared_ptr<PluginLibrary>> PluginLibrary::load(const std::string& path, int32_t kind,
                                                             int32_t backend, uint64_t max_file_size) {
    auto file = PluginFile::open(path, max_file_size);
    if (!file) return file.status();
    return load(**file, kind, backend);
}

Expected<std::shared_ptr<PluginLibrary>> PluginLibrary::load(const PluginFile& file, int32_t kind,
                                                             int32_t backend) {
    const std::string& path = file.path();
    const std::string who = "plugin " + path;
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->path_ = path;

    // The sealed copy, never the file name: what was checked is what is mapped.
    std::string open_path;
    lib->fd_ = descriptor_for_dlopen(file.fd(), open_path);
    if (lib->fd_ < 0) return io_error(who + ": no descriptor to load its in-memory copy from");
    // RTLD_LOCAL: plugins never see each other's symbols; RTLD_NOW: an unresolved symbol
    // is a refusal now, not a crash in the middle of a step.
    lib->handle_ = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle_) {
        const char* e = dlerror();
        std::string reason = e ? e : "unknown dlopen error";
        // dlerror names the descriptor; name the user's file instead.
        for (size_t at; (at = reason.find(open_path)) != std::string::npos;)
            reason.replace(at, open_path.size(), path);
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
            if (!d->attention || d->attention->struct_size < LLMQ_ATTENTION_OPS_SIZE_1_0 ||
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
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace llmq

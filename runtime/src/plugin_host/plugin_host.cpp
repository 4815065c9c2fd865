#include "llmq/runtime/plugin_host.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/plugin_probe.hpp"

#include "llmq_plugin_paths.h"

namespace llmq {

std::string default_plugin_dir() {
    if (const char* env = std::getenv("LLMQ_PLUGIN_DIR"); env && *env) return env;
    // A binary running from the build tree uses the plugins built beside it; an installed
    // one uses the install folder.
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string build_dir = LLMQ_BUILD_PLUGIN_DIR;
    if (!ec && !build_dir.empty()) {
        auto build_root = std::filesystem::path(build_dir).parent_path();
        auto rel = std::filesystem::relative(self, build_root, ec);
        if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0 &&
            std::filesystem::is_directory(build_dir))
            return build_dir;
    }
    // An installed binary (<prefix>/bin or <prefix>/sbin) uses the plugins of its own prefix,
    // so that a moved tree (or one installed with --destdir) never loads another install's.
    if (!ec) {
        auto beside = self.parent_path().parent_path() / LLMQ_INSTALL_PLUGIN_SUBDIR;
        if (std::filesystem::is_directory(beside, ec)) return beside.string();
    }
    return LLMQ_INSTALL_PLUGIN_DIR;
}

std::string plugin_path(const std::string& dir, const std::string& name_or_path) {
    if (name_or_path.find('/') != std::string::npos) return name_or_path;
    return (std::filesystem::path(dir) / ("llmq-" + name_or_path + ".so")).string();
}

std::string PluginHost::table_for(const std::string& plugin_name) const {
    for (const auto& [name, table] : choice_.plugin_tables)
        if (name == plugin_name) return table;
    return "";
}

Expected<std::unique_ptr<PluginHost>> PluginHost::create(const PluginChoice& choice,
                                                         std::vector<Device*> devices) {
    std::unique_ptr<PluginHost> host(new PluginHost());
    host->choice_ = choice;
    if (host->choice_.dir.empty()) host->choice_.dir = default_plugin_dir();
    host->devices_ = std::move(devices);

    auto set = std::make_shared<PluginSet>();
    set->devices.resize(host->devices_.size());
    const auto now = std::chrono::system_clock::now();
    set->gemm_since = set->attention_since = set->vision_since = now;

    for (int32_t kind : {LLMQ_PLUGIN_KIND_GEMM, LLMQ_PLUGIN_KIND_ATTENTION, LLMQ_PLUGIN_KIND_VISION}) {
        // One library per backend, read once, probed and loaded when its first device comes,
        // shared by every device of that backend.
        std::shared_ptr<PluginLibrary> libs[3];
        for (size_t i = 0; i < host->devices_.size(); ++i) {
            Device& dev = *host->devices_[i];
            const int32_t backend = dev.backend();
            const std::string& name = choice.name(kind, backend);
            if (name.empty()) continue;
            const std::string section =
                backend == LLMQ_BACKEND_CPU ? "[plugins] " : "[plugins." + std::string(backend_name(backend)) + "] ";
            const std::string key = section + plugin_kind_name(kind) + " = \"" + name + "\"";
            const std::string path = plugin_path(host->choice_.dir, name);
            auto& lib = libs[backend];
            if (!lib) {
                // Read once: the probe and the load get this copy, never the name again.
                auto file = PluginFile::open(path, choice.max_file_size);
                if (!file) return file.status().with_context(key);
                if (choice.probe) {
                    ProbeRequest p;
                    p.path = path;
                    p.file = *file;
                    p.kind = kind;
                    p.backend = backend;
                    for (const auto& [table_name, table] : choice.plugin_tables) p.tables[table_name] = table;
                    auto r = run_plugin_probe(p);  // no canary shapes: constructors and init only
                    if (!r) return r.status().with_context(key);
                }
                auto loaded = PluginLibrary::load(**file, kind, backend);
                if (!loaded) return loaded.status().with_context(key);
                lib = *loaded;
                log::info(std::string("plugin ") + plugin_kind_name(kind) + ": " + lib->name() + " " +
                          lib->version() + " from " + path);
            }
            auto inst = PluginInstance::create(lib, dev, host->table_for(lib->name()));
            if (!inst) return inst.status();
            auto& slot = set->devices[i];
            if (kind == LLMQ_PLUGIN_KIND_GEMM) slot.gemm = *inst;
            if (kind == LLMQ_PLUGIN_KIND_ATTENTION) slot.attention = *inst;
            if (kind == LLMQ_PLUGIN_KIND_VISION) slot.vision = *inst;
        }
    }
    host->current_ = std::move(set);
    return host;
}

const std::string& PluginChoice::name(int32_t kind, int32_t backend) const {
    static const std::string none;
    const bool cuda = backend == LLMQ_BACKEND_CUDA;
    if (backend != LLMQ_BACKEND_CPU && !cuda) return none;
    switch (kind) {
        case LLMQ_PLUGIN_KIND_GEMM: return cuda ? cuda_gemm : gemm;
        case LLMQ_PLUGIN_KIND_ATTENTION: return cuda ? cuda_attention : attention;
        case LLMQ_PLUGIN_KIND_VISION: return cuda ? cuda_vision : vision;
    }
    return none;
}

std::shared_ptr<const PluginSet> PluginHost::snapshot() const {
    std::lock_guard lock(mutex_);
    return current_;
}

const std::shared_ptr<PluginInstance>& PluginSet::of(int32_t kind, size_t index) const {
    static const std::shared_ptr<PluginInstance> none;
    if (index >= devices.size()) return none;
    const PerDevice& d = devices[index];
    switch (kind) {
        case LLMQ_PLUGIN_KIND_GEMM: return d.gemm;
        case LLMQ_PLUGIN_KIND_ATTENTION: return d.attention;
        case LLMQ_PLUGIN_KIND_VISION: return d.vision;
    }
    return none;
}

std::chrono::system_clock::time_point PluginSet::since(int32_t kind) const {
    switch (kind) {
        case LLMQ_PLUGIN_KIND_GEMM: return gemm_since;
        case LLMQ_PLUGIN_KIND_ATTENTION: return attention_since;
        case LLMQ_PLUGIN_KIND_VISION: return vision_since;
    }
    return {};
}

std::shared_ptr<const PluginSet> PluginHost::publish_kind(
    int32_t kind, std::vector<std::shared_ptr<PluginInstance>> instances) {
    std::shared_ptr<const PluginSet> old;
    {
        // Read, modify and publish under one lock, so two publishers never lose a kind.
        std::lock_guard lock(mutex_);
        auto next = std::make_shared<PluginSet>(*current_);
        const auto now = std::chrono::system_clock::now();
        for (size_t i = 0; i < next->devices.size() && i < instances.size(); ++i) {
            auto& d = next->devices[i];
            if (kind == LLMQ_PLUGIN_KIND_GEMM) d.gemm = instances[i];
            if (kind == LLMQ_PLUGIN_KIND_ATTENTION) d.attention = instances[i];
            if (kind == LLMQ_PLUGIN_KIND_VISION) d.vision = instances[i];
        }
        if (kind == LLMQ_PLUGIN_KIND_GEMM) next->gemm_since = now;
        if (kind == LLMQ_PLUGIN_KIND_ATTENTION) next->attention_since = now;
        if (kind == LLMQ_PLUGIN_KIND_VISION) next->vision_since = now;
        old = std::move(current_);
        current_ = std::move(next);
    }
    swaps_.fetch_add(1);
    return old;
}

void PluginHost::set_reload_handler(std::function<void(const std::string&)> handler) {
    std::lock_guard lock(mutex_);
    reload_handler_ = std::move(handler);
}

void PluginHost::request_reload(const std::string& why) {
    std::function<void(const std::string&)> handler;
    {
        std::lock_guard lock(mutex_);
        handler = reload_handler_;
    }
    if (handler) handler(why);
    else log::info(why + ": plugin reload is not available in this process; ignoring");
}

void PluginHost::publish(std::shared_ptr<const PluginSet> set) {
    std::shared_ptr<const PluginSet> old;
    {
        std::lock_guard lock(mutex_);
        old = std::move(current_);
        current_ = std::move(set);
    }
    // `old` may be the last owner: its instances shut down here, outside the lock.
}

}  // namespace llmq

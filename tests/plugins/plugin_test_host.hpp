// A tiny plugin host for tests: a host table whose parallel_for runs three uneven ranges on
// three threads, and a plugin loaded with dlopen from LLMQ_PLUGIN_DIR.
#pragma once

#include <dlfcn.h>

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llmq_plugin.h"

namespace llmq::plugin_testing {

// ---- a minimal host

struct test_host {
    llmq_host table{};
    std::mutex mutex;
    std::vector<std::string> log_lines;
    std::string config;

    explicit test_host(std::string toml = "") : config(std::move(toml)) {
        table.struct_size = sizeof(llmq_host);
        table.abi_version = LLMQ_PLUGIN_ABI_VERSION;
        table.host_context = this;
        table.log = [](void* self, int32_t, const char* message) {
            auto* host = static_cast<test_host*>(self);
            std::lock_guard lock(host->mutex);
            host->log_lines.emplace_back(message);
        };
        table.alloc = [](void*, size_t bytes, size_t alignment) -> void* {
            return std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
        };
        table.free = [](void*, void* pointer) { std::free(pointer); };
        table.parallel_for = [](void*, int64_t n, llmq_range_fn fn, void* arg) {
            // Three uneven ranges: [0, n/5), [n/5, n/2), [n/2, n); the first on the caller.
            const int64_t cuts[4] = {0, n / 5, n / 2, n};
            std::vector<std::thread> helpers;
            for (int r = 1; r < 3; ++r)
                if (cuts[r] < cuts[r + 1]) helpers.emplace_back(fn, arg, cuts[r], cuts[r + 1]);
            if (cuts[0] < cuts[1]) fn(arg, cuts[0], cuts[1]);
            for (auto& t : helpers) t.join();
        };
        table.device_type = LLMQ_BACKEND_CPU;
        table.num_threads = 3;
        table.config_toml = config.c_str();
    }
    bool logged(const std::string& text) {
        std::lock_guard lock(mutex);
        for (const auto& line : log_lines)
            if (line.find(text) != std::string::npos) return true;
        return false;
    }
};

// ---- a loaded plugin

struct loaded_plugin {
    void* handle = nullptr;
    const llmq_plugin_descriptor* descriptor = nullptr;

    explicit loaded_plugin(const char* name) {
        const char* dir = std::getenv("LLMQ_PLUGIN_DIR");
        REQUIRE_MESSAGE(dir != nullptr, "LLMQ_PLUGIN_DIR is not set (run through meson test)");
        const std::string path = std::string(dir) + "/llmq-" + name + ".so";
        handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            const char* why = dlerror();
            FAIL("dlopen ", path, ": ", std::string(why != nullptr ? why : "unknown error"));
        }
        auto entry = reinterpret_cast<llmq_plugin_entry_fn>(dlsym(handle, LLMQ_PLUGIN_ENTRY_SYMBOL));
        REQUIRE_MESSAGE((entry != nullptr), path, " has no ", std::string(LLMQ_PLUGIN_ENTRY_SYMBOL));
        descriptor = entry();
        REQUIRE(descriptor != nullptr);
    }
    ~loaded_plugin() {
        if (handle != nullptr) dlclose(handle);
    }
    loaded_plugin(const loaded_plugin&) = delete;
    loaded_plugin& operator=(const loaded_plugin&) = delete;

    // Runs init; returns the status and keeps the instance (shut down by the destructor of
    // the returned guard).
    struct instance {
        const llmq_plugin_descriptor* descriptor;
        void* state = nullptr;
        llmq_status status = LLMQ_STATUS_INTERNAL;
        llmq_error error{};
        ~instance() {
            if (status == LLMQ_OK) descriptor->shutdown(state);
        }
    };
    std::unique_ptr<instance> init(const llmq_host* host) const {
        auto out = std::make_unique<instance>();
        out->descriptor = descriptor;
        out->status = descriptor->init(host, &out->state, &out->error);
        return out;
    }
};

inline std::string message_of(const llmq_error& e) { return std::string(e.message); }

}  // namespace llmq::plugin_testing

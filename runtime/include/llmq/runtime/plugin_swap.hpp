// Replacing a kernel plugin while the engine serves, with nothing lost.
//
// One swap goes through these stages, each timed; a failure at any of them is a refusal that
// names the stage and the reason, and leaves the current plugin serving untouched:
//   probe    (when SwapPolicy::probe) the plugin is loaded, initialised and run on the canary
//            shapes in a short-lived process (plugin_probe.hpp): a crash, abort or hang in its
//            constructors, init or kernels ends that process, not the daemon;
//   (read)   before any stage the file is read once into a sealed memfd (plugin_file.hpp):
//            a symbolic link, a directory, FIFO or device, a file over [plugins] max_file_size
//            is refused at "load"; the probe and dlopen both get that copy, never the name;
//   load     PluginLibrary::load of that copy (a rebuilt file of the same name gets a
//            new handle) with every ABI check: version, struct size, entry symbol, kind,
//            backend, function table; once per backend of the device group;
//   init     one instance per device of the group, each on its device's worker thread; all or
//            none: one failure drops the instances already made;
//   canary   on every device, between the engine's tasks there, the new instance and the
//            current one compute the canary (plugin_canary.hpp) and must agree within the
//            tolerance of the dtype;
//   publish  PluginHost::publish_kind: the next engine step takes the new set; a step already
//            running finishes with the set it took;
//   retire   wait until no step holds the old set any more, then shut its instances down and
//            close its libraries here, off the engine thread.
//
// CUDA plugins (when built) take the same path: the probe runs on one GPU in its own process;
// load is per backend; init and canary run on every CUDA device of the group, each on its own
// worker (with its stream current); if any device refuses, the instances made on the others
// are shut down and the swap is refused, so a swap changes every device or none.
//
// Threads: swaps are serialised by the swapper. swap() blocks on the devices' workers and on
// the engine's steps, so call it from a thread of its own (never the engine thread or a
// device worker).
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmq/runtime/plugin_canary.hpp"
#include "llmq/runtime/plugin_host.hpp"

namespace llmq {

struct SwapPolicy {
    bool probe = true;
    CanaryTolerances tolerances;
    CanaryShapes shapes;  // canary_shapes_for_model of the loaded model
    std::chrono::milliseconds probe_timeout{20000};
    // How long retire waits for the steps holding the old set before it lets the last of them
    // close it (it is closed either way; this only bounds the report's wait).
    std::chrono::milliseconds retire_timeout{30000};
};

struct SwapStage {
    std::string name;  // probe, load, init, canary, publish, retire
    double ms = 0;
};

struct SwapReport {
    int32_t kind = 0;
    std::string requested;      // what was asked: a plugin name or a path
    std::string path;           // the file it resolved to
    std::string reason;         // who asked: "command", "reload", "SIGHUP", "watch", ...
    bool swapped = false;
    std::string refused_at;     // the stage that refused; "" when swapped
    std::string message;        // one line: what happened and why
    std::string old_name, old_version, old_path;
    std::string new_name, new_version;
    std::vector<SwapStage> stages;  // in the order they ran
    std::chrono::system_clock::time_point finished;

    double stage_ms(const std::string& name) const;  // 0 when that stage did not run
    nlohmann::json to_json() const;
};

// "2026-11-25T16:39:44.090Z" (UTC, milliseconds), as swap reports and plugin lists show times.
std::string utc_timestamp(std::chrono::system_clock::time_point t);

class PluginSwapper {
public:
    PluginSwapper(PluginHost& host, SwapPolicy policy);
    ~PluginSwapper();
    PluginSwapper(const PluginSwapper&) = delete;
    PluginSwapper& operator=(const PluginSwapper&) = delete;

    // Put the plugin at `name_or_path` (as [plugins] gemm takes it: a name looked up in the
    // host's dir, or a path) in place of the current plugin of `kind`. Never throws; the
    // report says what happened. Thread: see above.
    SwapReport swap(int32_t kind, const std::string& name_or_path, const std::string& reason);
    // Load the current plugin of `kind` again from its own path (a rebuilt file).
    SwapReport reload(int32_t kind, const std::string& reason);

    const SwapPolicy& policy() const { return policy_; }

    // From now on every swap is refused ("llmqd is stopping"), and the one running ends at its
    // next stage boundary: a probe is killed at once, retire stops waiting. Thread: any.
    void cancel();
    bool cancelled() const { return cancelled_.load(); }

private:
    SwapReport run(int32_t kind, const std::string& requested, const std::string& reason);
    static Status stopping_status();

    PluginHost& host_;
    SwapPolicy policy_;
    std::mutex mutex_;  // one swap at a time
    std::atomic<bool> cancelled_{false};
    int cancel_fd_ = -1;  // an eventfd, readable once cancel() ran (wakes the probe's wait)
};

}  // namespace llmq

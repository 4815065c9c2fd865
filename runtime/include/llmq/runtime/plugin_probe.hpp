// The plugin probe: a plugin new to the runtime is first loaded in a short-lived process, so
// that its library constructors, its init and its first computations run where a crash, a
// hang or an abort only ends that process. dlopen runs constructors before any check can look
// at the library, which is why this cannot be done inside the daemon.
//
// The probe is a separate executable, llmq-plugin-probe (tools/plugin-probe), started with
// posix_spawn (fork and exec in one step, safe in a threaded process and one that uses CUDA;
// the daemon itself is never forked). It inherits, as descriptor 3, the sealed copy of the
// plugin file the daemon read (plugin_file.hpp) — the very bytes the daemon loads after it —
// and gets its request as one JSON object on stdin:
//   {"path", "fd": 3, "kind", "backend", "tables": {plugin name: TOML text}, "shapes": ...}
// ("path" names the user's file in messages; without "fd" the probe reads "path" itself, the
// same way) and runs, as the daemon would, PluginLibrary::load (every ABI check), init on one device of the
// backend and the canary without a reference (every output must be finite), and writes JSON
// lines on stdout: {"stage": "load"|"init"|"canary"} as it enters each stage, then
// {"ok": true, "load_ms", "init_ms", "canary_ms"} or {"ok": false, "stage", "error"}.
// The last stage line it wrote names the stage it died in when it does not finish.
//
// CUDA plugins (when built): the probe creates the device of the request's backend (one GPU,
// its own CUDA context in its own process), so a plugin that faults the GPU or aborts is
// refused the same way; the daemon's own init and canary then run on every device.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "llmq/runtime/plugin_canary.hpp"
#include "llmq/runtime/plugin_file.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct ProbeRequest {
    std::string path;    // the plugin file (the user's path, for messages)
    // Its sealed copy, handed to the probe; the daemon always sets it (and then loads the same
    // copy). Null: run_plugin_probe reads `path` itself with PluginFile::open.
    std::shared_ptr<const PluginFile> file;
    int32_t kind = 0;    // llmq_plugin_kind
    int32_t backend = LLMQ_BACKEND_CPU;
    std::map<std::string, std::string> tables;  // [plugins.<name>] TOML text by plugin name
    CanaryShapes shapes;
    std::chrono::milliseconds timeout{20000};   // the whole probe; then it is killed
    // When >= 0: a descriptor that becomes readable when the wait must end now (the daemon
    // stops); the probe is then killed and the result is an `unavailable` error.
    int cancel_fd = -1;
};

struct ProbeReport {
    double total_ms = 0;  // spawn to exit, as the daemon saw it
    double load_ms = 0, init_ms = 0, canary_ms = 0;  // as the probe measured them
};

// The probe executable: $LLMQ_PLUGIN_PROBE; else llmq-plugin-probe beside the running
// executable; else the build tree's when this binary runs from the build tree; else the one of
// the prefix this binary is installed in; else the configured install path. Returns the path even when it does not exist (the spawn then says so).
std::string plugin_probe_executable();

// Spawn the probe and wait for it (at most request.timeout). Refusals (the plugin's fault)
// are errors whose message names the stage and the reason: the probe's own message, the
// signal that killed it ("crashed with SIGSEGV in init"), a non-zero exit, or the timeout;
// the probe's last stderr lines are appended. io_error when the probe cannot be started.
// Thread: any; blocks.
[[nodiscard]] Expected<ProbeReport> run_plugin_probe(const ProbeRequest& request);

// The probe's side: read a request from `in_fd`, run it, write the JSON lines to `out_fd`.
// Returns the process exit code (0: passed, 1: refused, 2: bad request).
int plugin_probe_main(int in_fd, int out_fd);

}  // namespace llmq

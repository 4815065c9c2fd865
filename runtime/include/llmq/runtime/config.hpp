// The daemon's configuration: one typed struct, filled from one TOML file.
//
// Every key is optional; a default-constructed Config holds every default. The key table in
// runtime/src/config/config_keys.cpp is the single source of truth: for each key it holds the
// one-line description, how the TOML value is read, the rule that validates it and how it is
// printed. parse_config() and validate_config() apply the same rules; print_config() writes
// every key with its description as a TOML document that parses back to the same Config.
//
// Errors name the file, the line and the key:
//   llmq.toml:7: [scheduler] max_running_sequences = -3: must be between 1 and 4096
// Unknown sections and keys are errors too (with a "did you mean" when one is close).
// All problems of a file are reported together, one per line, in file order.
//
// Units in the file: sizes are an integer (bytes) or a string such as "512KiB", "16MiB",
// "6GiB", "1.5GB" (see byte_size.hpp); durations are strings such as "250ms", "5s", "2m"
// (see duration.hpp).
//
// Threads: all functions are pure (load_config_file reads the file) and may be called from
// any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct ModelConfig {
    std::string path;              // GGUF file; "" = none (give one on the command line)
    uint32_t context_length = 0;   // tokens; 0 = the model's training context (capped by kv_cache)
    std::string name;              // shown to clients; "" = the file name without extension
    std::string chat_template;     // Jinja file used instead of the model's; "" = the model's
    std::string vision;            // LLaVA-style projector GGUF (arch "clip"); "" = text only
    bool operator==(const ModelConfig&) const = default;
};

// Which CUDA GPUs to use: every visible one, none, or the listed ordinals.
struct CudaSelection {
    enum class Mode { automatic, none, list };
    Mode mode = Mode::automatic;
    std::vector<int> ordinals;     // Mode::list only: distinct ordinals in the order given
    bool operator==(const CudaSelection&) const = default;
};

// Which kind of device serves: GPUs when there are any (else CPU devices, with a log line
// saying no GPU was found), CPU devices only, or GPUs only (no GPU is a load error).
enum class DeviceBackend { automatic, cpu, cuda };
// How the CUDA devices of one group talk: NCCL where every device is a GPU of its own (and
// llmq was built with NCCL), else device-memory copies; or either of them.
enum class CudaCommunicator { automatic, nccl, device_memory };

struct DevicesConfig {
    DeviceBackend backend = DeviceBackend::automatic;
    int cpu = 1;                        // number of CPU devices the host is split into
    int cpu_threads_per_device = 0;     // 0 = the host's cores divided evenly
    uint64_t cpu_memory_limit = 0;      // bytes per CPU device; 0 = no limit
    double memory_fraction = 0.9;       // share of each device the runtime may take, (0, 1]
    CudaSelection cuda;
    int cuda_devices_per_gpu = 1;       // logical devices each GPU is split into
    uint64_t cuda_memory_limit = 0;     // bytes per CUDA (logical) device; 0 = its share of the GPU's free memory
    CudaCommunicator cuda_communicator = CudaCommunicator::automatic;
    bool operator==(const DevicesConfig&) const = default;
};

// std::nullopt = "auto": use every visible device (tensor x pipeline = device count).
struct ParallelConfig {
    std::optional<int> tensor;
    std::optional<int> pipeline;
    bool operator==(const ParallelConfig&) const = default;
};

enum class KvCacheDtype { f16, f32 };
const char* kv_cache_dtype_name(KvCacheDtype dtype);   // "f16" | "f32"

struct KvCacheConfig {
    KvCacheDtype dtype = KvCacheDtype::f16;
    int block_size = 16;        // tokens per block, a power of two in [1, 256]
    uint64_t memory = 0;        // bytes; 0 = enough for max_running_sequences x context_length
    bool operator==(const KvCacheConfig&) const = default;
};

struct SchedulerConfig {
    int max_tokens_per_step = 512;      // prefill + decode tokens in one engine step
    int max_running_sequences = 32;     // sequences in one step's batch
    int max_queued_requests = 256;      // waiting requests; beyond this a client hears "busy"
    int max_new_tokens = 4096;          // upper limit of any request's max_tokens
    int prefill_chunk = 256;            // prompt tokens of one request per step
    bool operator==(const SchedulerConfig&) const = default;
};

struct IpcConfig {
    std::string dir;                    // "" = $XDG_RUNTIME_DIR/llmq, else /tmp/llmq-<uid>
    std::string instance = "default";   // [A-Za-z0-9_.-]{1,64}; socket llmq-<instance>.sock
    std::string group;                  // "" = owner only (0700); else this group may connect
    // User names or uids (a string of digits is a uid); empty = the daemon's uid and root.
    std::vector<std::string> allowed_users;
    uint64_t region_size = 16ull << 20;            // bytes of each client's shared region
    int request_ring_slots = 64;                   // power of two
    int response_ring_slots = 1024;                // power of two
    int max_clients = 256;                         // handshaked connections at once
    int max_handshaking = 64;                      // connections not yet past the hello; the oldest goes
    int max_clients_per_uid = 128;                 // connections of one user (the daemon's own uid too)
    int max_clients_per_pid = 64;                  // connections of one process
    int max_requests_per_client = 64;              // live (queued or running) requests of one connection
    int max_running_per_client = 16;               // running sequences of one connection
    int max_pending_events = 256;                  // events held for a client whose ring is full
    uint64_t max_prompt_bytes = 1ull << 20;        // bytes of one request's prompt
    uint64_t max_image_bytes = 8ull << 20;         // bytes of all images of one request (encoded)
    int max_images = 4;                            // images of one request
    int max_image_dimension = 8192;                // pixels of an image's width or height (from its header)
    int64_t max_image_pixels = 16ll << 20;         // width * height of one image (from its header)
    std::chrono::milliseconds stall_timeout{5000}; // a client that reads nothing this long is cut off
    std::chrono::milliseconds drain_timeout{30000};// SIGTERM waits this long for running requests
    uint64_t control_max_line = 64ull << 10;       // bytes of one control-command line
    int control_max_depth = 32;                    // JSON nesting of one control command
    int idle_spin_us = 100;                        // spin on the rings this long before sleeping (0: never)
    bool operator==(const IpcConfig&) const = default;
};

struct PluginsConfig {
    std::string dir;                       // "" = the build's or install's plugin folder
    // [plugins] gemm / attention / vision: the plugins of CPU devices (name or path of a .so).
    std::string gemm = "gemm-cpu";
    std::string attention = "attention-cpu";
    std::string vision;                    // "" = none
    // [plugins.cuda] gemm / attention / vision: the plugins of CUDA devices.
    std::string cuda_gemm = "gemm-cuda";
    std::string cuda_attention = "attention-cuda";
    std::string cuda_vision;               // "" = none
    bool watch = false;                    // swap a plugin when its file in dir is replaced
    bool probe = true;                     // load a new plugin in a probe process first
    uint64_t max_file_size = 256ull << 20; // bytes of one plugin file (larger ones are refused)
    int swap_queue = 16;                   // swap/reload jobs that may wait; more are refused
    double tolerance_f32 = 1e-4;           // canary tolerance per weight dtype
    double tolerance_f16 = 1e-2;
    double tolerance_bf16 = 2e-2;
    double tolerance_q8_0 = 2e-2;
    // [plugins.<name>] tables, each as a TOML document (the plugin's own config, handed to
    // it at init). Keys are plugin names ([A-Za-z0-9_.-]{1,64}).
    std::map<std::string, std::string> tables;
    bool operator==(const PluginsConfig&) const = default;
};

struct LogConfig {
    log::level level = log::level::info;
    std::string file;                      // "" = stderr
    bool json = false;                     // one JSON object per line
    bool operator==(const LogConfig&) const = default;
};

// CUDA devices' execution ([cuda]).
struct CudaConfig {
    bool graphs = false;  // decode steps recorded as CUDA graphs per batch bucket and replayed
    bool operator==(const CudaConfig&) const = default;
};

struct MetricsConfig {
    std::string listen;  // "" = off; "ADDRESS:PORT" serves Prometheus text at /metrics
    bool operator==(const MetricsConfig&) const = default;
};

struct Config {
    ModelConfig model;
    DevicesConfig devices;
    CudaConfig cuda;
    ParallelConfig parallel;
    KvCacheConfig kv_cache;
    SchedulerConfig scheduler;
    IpcConfig ipc;
    PluginsConfig plugins;
    LogConfig log;
    MetricsConfig metrics;
    bool operator==(const Config&) const = default;
};

// Read and validate a config file. not_found / io_error when it cannot be read;
// invalid_argument (every problem, one per line, "<path>:<line>: [section] key = value: why")
// for bad TOML, unknown sections or keys, and bad values.
[[nodiscard]] Expected<Config> load_config_file(const std::string& path);

// The same for TOML text; source_name stands for the file in messages.
[[nodiscard]] Expected<Config> parse_config(std::string_view toml_text,
                                            std::string_view source_name);

// Check a Config built or changed in code (e.g. after command-line overrides) with the rules
// parse_config applies. invalid_argument naming each bad key and its value.
[[nodiscard]] Status validate_config(const Config& config);

// Every key with its one-line description and value, as a TOML document that parse_config
// reads back to an equal Config. This is what `llmqd --print-config` prints.
std::string print_config(const Config& config);

}  // namespace llmq

// The memory planner: before a byte of weights is read, decide whether a model fits a
// device group under a split, and how many KV blocks each device can hold.
//
// From the GGUF header alone (works on header-only files) it computes, per device: the
// weight bytes of its shard (the same slicing the shards use), the workspace of the largest
// step, and the KV cache, against the device's capacity × [devices] memory_fraction. When
// the plan does not fit, the message gives the numbers per device and the smallest
// tensor × pipeline split of the devices present that would fit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/model_shard.hpp"
#include "llmq/runtime/parallel_plan.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct PlannerInput {
    std::optional<int32_t> tensor;    // nullopt: auto
    std::optional<int32_t> pipeline;  // nullopt: auto
    double memory_fraction = 0.9;
    kernels::dtype kv_dtype = kernels::dtype::f16;
    int32_t block_size = 16;
    uint64_t kv_memory = 0;           // total KV bytes wanted; 0: as much as max_seqs × context
    int32_t context_length = 0;       // 0: the model's training context
    int32_t max_seqs = 32;
    int32_t max_tokens_per_step = 512;
    // A vision tower (a LLaVA-style [model] vision, or an mllama file's own v.* / mm.0): its
    // weights and the activations of one image's encode, both on the first device (stage 0,
    // rank 0), where images are encoded.
    uint64_t vision_weight_bytes = 0;
    uint64_t vision_activation_bytes = 0;
    // Images of one request ([ipc] max_images): a cross-attention model (mllama) keeps each
    // image's keys and values on every device that holds a cross-attention layer.
    int32_t max_images = 0;
};

struct DevicePlan {
    std::string device;
    int32_t stage = 0, rank = 0;
    int32_t layer_begin = 0, layer_end = 0;
    uint64_t capacity = 0;   // what the device has
    uint64_t usable = 0;     // capacity × memory_fraction
    uint64_t weights = 0;
    uint64_t workspace = 0;
    uint64_t kv = 0;         // at the planned block count (a plan that does not fit: one sequence)
    uint64_t kv_per_block = 0;
    uint64_t minimum_kv = 0; // one sequence of full context
    uint64_t vision_weights = 0;    // the vision tower (first device only)
    uint64_t vision_workspace = 0;  // the encoder's activations for one image (first device only)
    // mllama: f32 image keys and values of max_images images in this device's cross layers.
    uint64_t image_kv = 0;
    bool fits = false;
    uint64_t fixed() const { return weights + workspace + vision_weights + vision_workspace + image_kv; }
    uint64_t needed() const { return fixed() + kv; }
};

struct MemoryPlan {
    ParallelPlan parallel;
    std::vector<DevicePlan> devices;
    int32_t context_length = 0;
    int32_t num_blocks = 0;      // KV blocks, the same on every device; when the plan does not
                                 // fit, the blocks of the one sequence the refusal counts
    int32_t block_size = 16;
    uint64_t total_weights = 0;  // the whole model
    bool fits = false;
    std::string reason;          // when it does not fit: why, with numbers, and what would

    std::string to_text() const;
    nlohmann::json to_json() const;
};

// Per-device weight and workspace bytes of shard (stage, rank) under `plan`.
uint64_t shard_weight_bytes(const LlamaLayout& layout, const ShardSpec& spec);
uint64_t shard_workspace_bytes(const LlamaHParams& hp, int32_t tensor, int32_t rank,
                               int32_t max_tokens, int32_t max_logit_rows);

// Auto split for `devices` devices: the largest tensor size the head counts allow, pipeline
// for the rest (never more stages than layers), stages balanced as make_parallel_plan does
// with `kv_head_bytes`.
[[nodiscard]] Expected<ParallelPlan> auto_parallel_plan(const LlamaLayout& layout, int32_t devices,
                                                        uint64_t kv_head_bytes = 0);

// Plan for the given devices. Returns a plan with fits == false (and reason) when it does
// not fit; an error only for an impossible request (bad split, too few devices).
[[nodiscard]] Expected<MemoryPlan> plan_memory(const LlamaLayout& layout,
                                               const std::vector<DeviceInfo>& devices,
                                               const PlannerInput& input);

// "4x80GiB" or "80GiB,80GiB,40GiB" → device infos named "plan:0".. (for `llmq plan`).
[[nodiscard]] Expected<std::vector<DeviceInfo>> parse_device_list(const std::string& text);

}  // namespace llmq

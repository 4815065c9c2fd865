// The canary: before a plugin replaces another while the daemon serves, it must compute what
// the plugin it replaces computes, on inputs shaped like the loaded model's, within a
// tolerance per dtype ([plugins] tolerance_f32/f16/bf16/q8_0; q8_0 also for the other block types).
//
// GEMM cases take K, N and the weight dtype from the model's matmul weights (attention
// projections and FFN of layer 0: every layer has the same shapes) with M = 1 (decode) and
// M = 7 (an odd prefill chunk). Attention cases take the model's head counts and head_dim and
// run one batch that mixes a prefill, a chunked prefill and a decode over a small paged cache
// whose block ids are shuffled, with the daemon's block size and KV dtype.
//
// Inputs are deterministic pseudo-random values; outputs start as NaN, so a plugin that
// leaves part of its output unwritten fails. The error of a case is
//   max |candidate - reference| / max |reference|
// (the largest difference relative to the largest output), compared with the tolerance of
// the case's dtype (weights for GEMM, the KV cache for attention). Without a reference (the
// probe process) a case passes when every output is finite.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct GemmCanaryCase {
    std::string what;               // where the shape comes from, e.g. "blk.0.ffn_up"
    int64_t K = 0, N = 0;           // y[M, N] = x[M, K] · w[N, K]ᵀ
    int32_t w_dtype = LLMQ_DTYPE_F32;
    std::vector<int64_t> M = {1, 7};
};

struct AttentionCanaryCase {
    int32_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
    int32_t block_size = 16;
    int32_t kv_dtype = LLMQ_DTYPE_F16;  // F32 or F16
};

struct CanaryShapes {
    std::vector<GemmCanaryCase> gemm;
    std::vector<AttentionCanaryCase> attention;
};

struct CanaryTolerances {
    double f32 = 1e-4, f16 = 1e-2, bf16 = 2e-2, q8_0 = 2e-2;
    double for_dtype(int32_t dtype) const;
};

// The shapes one device sees for a model split `tensor` ways (column-parallel projections
// and FFN rows, row-parallel FFN down), with the daemon's KV block size and dtype. A weight
// of more than 4 Mi values is trimmed along N (each output column is an independent dot
// product of length K; the trimmed N keeps the real N's remainder modulo 64, so tile tails
// are still exercised), so that one case holds a device's worker for a few milliseconds at
// most even on a 70B model.
CanaryShapes canary_shapes_for_model(const LlamaLayout& layout, int32_t tensor,
                                     int32_t block_size, int32_t kv_dtype);
// Small shapes in every weight dtype, for a host without a model (tests, tools).
CanaryShapes default_canary_shapes();

nlohmann::json canary_shapes_to_json(const CanaryShapes& shapes);
// Errors: invalid_argument naming the field that is missing, of the wrong type or out of range.
[[nodiscard]] Expected<CanaryShapes> canary_shapes_from_json(const nlohmann::json& j);

// The canary's inputs, made once and shared by every device, and its cases. Inputs are made
// on the calling thread (the swap thread), so that a device's worker only spends the plugin
// calls and the comparison of one case at a time between the engine's tasks: a swap delays a
// step by at most one case, not by the whole canary.
class CanaryRun {
public:
    // Vision: one image through a small random CLIP tower and MLP projector that the canary
    // makes itself (2 layers, 32 wide, 4 patches: the model's own weights are not needed),
    // loaded into both instances under the canary's own key, so the serving instance reloads
    // the model's weights before its next image (PluginInstance::vision_load_weights).
    // Errors: unsupported for an unknown kind; out_of_memory.
    [[nodiscard]] static Expected<CanaryRun> prepare(int32_t kind, const CanaryShapes& shapes,
                                                     const CanaryTolerances& tolerances);
    int32_t kind() const { return kind_; }
    size_t cases() const;
    // Run case `index` on `candidate` and, when given, on `reference` (the plugin being
    // replaced), and compare. Errors name the case, the shape, the error and the tolerance; a
    // plugin call that fails is an error with the plugin's message. Thread: the worker of the
    // instances' device (plugins call parallel_for). Const: several devices may run one case
    // at once.
    [[nodiscard]] Status run_case(size_t index, PluginInstance& candidate, PluginInstance* reference) const;

private:
    struct GemmInput;
    struct AttentionInput;
    struct VisionInput;
    CanaryRun() = default;
    int32_t kind_ = 0;
    CanaryTolerances tolerances_;
    std::vector<std::shared_ptr<const GemmInput>> gemm_;  // one per (weight, M)
    std::vector<std::shared_ptr<const AttentionInput>> attention_;
    std::shared_ptr<const VisionInput> vision_;
};

// Every case on the calling thread. Thread: the instances' device worker.
[[nodiscard]] Status run_canary(int32_t kind, PluginInstance& candidate, PluginInstance* reference,
                                const CanaryShapes& shapes, const CanaryTolerances& tolerances);

// Inputs made here, then each case queued on the device's worker (between the engine's tasks
// there) and waited for. Both instances must belong to `device`. Thread: any but that device's
// worker.
[[nodiscard]] Status run_canary_on_device(Device& device, int32_t kind, PluginInstance& candidate,
                                          PluginInstance* reference, const CanaryShapes& shapes,
                                          const CanaryTolerances& tolerances);

}  // namespace llmq

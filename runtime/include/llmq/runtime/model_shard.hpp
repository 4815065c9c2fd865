// One device's part of a Llama model: the layers of its pipeline stage, sliced for its
// tensor rank, with its KV cache and its workspace. forward() reads like the architecture:
// embed, then per layer attention and SwiGLU FFN with residuals, then norm and LM head.
//
// Everything a shard does to device memory goes through its device's Backend (backend.hpp):
// the element-wise ops, the KV write, the copies of logits to the host; GEMM and attention
// are plugin calls. Weights are placed by the backend (on a CPU device a view into the
// memory-mapped file: a column-parallel slice is a run of rows, a row-parallel slice a column
// offset with the full row stride), so a shard reads only its own part of the file.
//
// Ownership: the shard owns its workspace and KV storage; the layout's file mapping and the
// backend must outlive it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/communicator.hpp"
#include "llmq/runtime/cross_attention.hpp"
#include "llmq/runtime/kv_cache.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/parallel_plan.hpp"
#include "llmq/runtime/plugin_host.hpp"

namespace llmq {

// The tokens of one micro-batch, flattened: sequence s owns token rows
// [query_start[s], query_start[s+1]). Host memory, built by the executor.
struct MicroBatch {
    int32_t num_tokens = 0;
    int32_t num_seqs = 0;
    std::vector<int32_t> tokens;         // [num_tokens]
    std::vector<int32_t> positions;      // [num_tokens]
    std::vector<int32_t> token_seq;      // [num_tokens] sequence of each token
    std::vector<int32_t> query_start;    // [num_seqs + 1]
    std::vector<int32_t> context_len;    // [num_seqs]
    std::vector<int32_t> block_tables;   // [num_seqs * max_blocks]
    int32_t max_blocks = 0;
    std::vector<int32_t> logit_rows;     // token rows whose logits are wanted
    // Token rows whose input is an image embedding row (host memory, n_embd floats) instead
    // of their token's embedding (LLaVA-style images, vision_encoder.hpp).
    std::vector<int32_t> embed_rows;
    std::vector<const float*> embed_src;
    int32_t logits_offset = 0;           // their first row in the step's logits
    // Cross-attention (mllama): per sequence its images' states, or null (a text-only
    // sequence, whose rows skip the cross-attention layers); per token the rows of its
    // sequence's states it sees, [cross_row_begin[t], cross_row_end[t]) (equal: none).
    // Empty when no sequence of the batch has images.
    std::vector<std::shared_ptr<const CrossAttentionStates>> cross;  // [num_seqs]
    std::vector<int32_t> cross_row_begin, cross_row_end;             // [num_tokens]
};

struct ShardSpec {
    int32_t stage = 0;
    int32_t stages = 1;
    int32_t rank = 0;   // tensor rank within the stage
    int32_t ranks = 1;  // tensor size
    int32_t layer_begin = 0;
    int32_t layer_end = 0;
};

class ModelShard {
public:
    // Place this shard's weights, allocate its KV cache (kv_template with this shard's layers
    // and KV heads filled in) and a workspace for max_tokens tokens and max_logit_rows logit
    // rows, all through `backend`. Fails with the device's name when memory runs out.
    // Thread: the loading thread.
    static Expected<std::unique_ptr<ModelShard>> create(const LlamaLayout& layout,
                                                        const ShardSpec& spec, Backend& backend,
                                                        const KvCacheShape& kv_template,
                                                        int32_t max_tokens, int32_t max_logit_rows);
    ~ModelShard();

    // Run one micro-batch through this shard. Stage 0 embeds; later stages receive the
    // activations from the previous stage over `pipe` (rank = stage); the last stage writes
    // logits [logit_rows, n_vocab] to HOST memory at logits + logits_offset * n_vocab (tensor
    // rank 0 only), and they are there when forward returns. Thread: this shard's device
    // worker; the plugins must be this device's.
    [[nodiscard]] Status forward(const MicroBatch& batch, const PluginSet::PerDevice& plugins,
                                 Communicator* tensor_comm, Communicator* pipe, float* logits);

    // [cuda] graphs: decode micro-batches (decode_graph_batch.hpp) of a shard that is the
    // whole model (one stage, one tensor rank) run as graph steps of its backend, when the
    // backend supports them (Backend::graphs_supported). Thread: the loading thread.
    void enable_decode_graphs(bool on) { graphs_ = on && spec_.ranks == 1 && spec_.stages == 1; }

    // Drop the image keys and values this shard keeps for the states with this id (the
    // request is finished). Thread: this shard's device worker.
    void release_image_kv(uint64_t states_id);
    // Bytes of image keys and values held now.
    uint64_t image_kv_bytes() const { return image_kv_bytes_.load(std::memory_order_relaxed); }

    const ShardSpec& spec() const { return spec_; }
    Backend& backend() const { return *backend_; }
    Device& device() const { return backend_->device(); }
    const KvCacheStorage& kv() const { return *kv_; }
    // Bytes of weights this shard reads, and of workspace it allocated.
    uint64_t weight_bytes() const { return weight_bytes_; }
    uint64_t workspace_bytes() const { return workspace_bytes_; }

private:
    struct Layer {
        const float* attn_norm;
        const float* ffn_norm;
        WeightView wq, wk, wv, wo, gate, up, down;
        const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
        // Cross-attention layers (mllama): wq/wk/wv/wo are cross_attn_*_proj.
        bool cross = false;
        const float *q_norm = nullptr, *k_norm = nullptr;
        float attn_gate = 0.0f, mlp_gate = 0.0f;  // tanh of the file's gates
    };
    // One request's image keys and values in this shard's cross-attention layers:
    // k[c], v[c] for its c-th cross layer, rows x [kv_heads][head_dim] f32.
    struct ImageKv {
        int64_t rows = 0;
        std::vector<DeviceBuffer> k, v;
    };
    ModelShard() = default;
    Status place_weights(const LlamaLayout& layout);
    Status matmul(const PluginSet::PerDevice& p, const float* x, int64_t m, const WeightView& w,
                  float* y);
    Status feed_forward(const PluginSet::PerDevice& p, const Layer& L, int64_t T, Communicator* tensor_comm);
    Status cross_attention_layer(const PluginSet::PerDevice& p, const MicroBatch& b, const Layer& L,
                                 int32_t cross_index, Communicator* tensor_comm);
    Expected<const ImageKv*> image_kv(const PluginSet::PerDevice& p, const CrossAttentionStates& states);
    Status logits_out(const PluginSet::PerDevice& p, const MicroBatch& b, Communicator* tensor_comm,
                      float* logits);
    // Embedding (or the previous stage's activations) and every layer, into x_.
    Status run_layers(const MicroBatch& b, const PluginSet::PerDevice& plugins, Communicator* tensor_comm,
                      Communicator* pipe);
    // A decode micro-batch as a graph step: padded, run (or captured, or replayed) through
    // the LM head into lg_all_, then the real rows' logits to the host.
    Status forward_graph(const MicroBatch& b, const PluginSet::PerDevice& plugins, float* logits);
    Status graph_body(const PluginSet::PerDevice& plugins);

    ShardSpec spec_;
    LlamaHParams hp_;
    TensorSlice slice_{};
    Backend* backend_ = nullptr;
    int32_t heads_ = 0, kv_heads_ = 0, ff_ = 0;
    std::vector<Layer> layers_;
    WeightView embedding_;  // this rank's vocabulary rows
    WeightView lm_head_;
    const float* output_norm_ = nullptr;
    const float* rope_freqs_ = nullptr;  // [head_dim / 2] per-pair divisors, or null
    std::unique_ptr<KvCacheStorage> kv_;
    int32_t max_tokens_ = 0, max_logit_rows_ = 0;
    // Workspace (device memory), in workspace_.
    float *x_ = nullptr, *h_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr,
          *att_ = nullptr, *o_ = nullptr, *gate_ = nullptr, *up_ = nullptr, *lg_ = nullptr,
          *lg_all_ = nullptr;
    std::vector<DeviceBuffer> workspace_;
    bool graphs_ = false;
    bool replay_ = false;  // in a graph step's replay: plugin calls are skipped
    MicroBatch graph_batch_;
    uint64_t weight_bytes_ = 0, workspace_bytes_ = 0;
    int32_t cross_layers_ = 0;  // cross-attention layers in this shard
    std::unordered_map<uint64_t, ImageKv> image_kv_;  // by CrossAttentionStates::id (worker thread)
    std::atomic<uint64_t> image_kv_bytes_{0};  // written on the worker, read by the engine
};

}  // namespace llmq

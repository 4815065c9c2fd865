// The executor runs engine steps across a device group: one ModelShard per device, tensor
// ranks inside pipeline stages, communicators between them made by the devices' backends
// (Backend::local_group in one process, Backend::world_group across MPI ranks). A step's
// sequences are split into micro-batches so that, with several stages, stage s works on
// micro-batch m while stage s+1 works on m-1; how many is pipeline_micro_batches' choice
// (pipeline_schedule.hpp: more than the stages for a prefill, one for a small decode step). Each shard's part of a step runs on its
// device's worker thread; the executor waits for all of them.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/communicator.hpp"
#include "llmq/runtime/cross_attention.hpp"
#include "llmq/runtime/kv_cache.hpp"
#include "llmq/runtime/mllama_vision.hpp"
#include "llmq/runtime/model_shard.hpp"
#include "llmq/runtime/mpi_world.hpp"
#include "llmq/runtime/parallel_plan.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/vision_encoder.hpp"

namespace llmq {

// One sequence's part of a step: `count` tokens starting at position `position`, whose KV
// goes to the blocks of `block_table` (which covers position + count).
struct StepSequence {
    const int32_t* tokens = nullptr;
    int32_t count = 0;
    int32_t position = 0;
    const std::vector<int32_t>* block_table = nullptr;
    bool want_logits = false;  // the logits of its last token
    int32_t logit_tokens = 1;  // with want_logits: of its last logit_tokens tokens (1..count)
    // Image positions (vision_encoder.hpp): when not null, embedding_row[t] >= 0 means token t
    // takes row embedding_row[t] of `embeddings` ([rows][n_embd], host memory) as its input.
    const float* embeddings = nullptr;
    const int32_t* embedding_row = nullptr;
    // Cross-attention images (mllama, cross_attention.hpp): the request's image states and
    // which positions see which image. Null: a text-only sequence (or a model without).
    std::shared_ptr<const CrossAttentionStates> cross;
    const CrossAttentionMask* cross_mask = nullptr;
};

struct ExecutorOptions {
    ParallelPlan plan;
    int32_t block_size = 16;
    int32_t num_blocks = 0;
    kernels::dtype kv_dtype = kernels::dtype::f16;
    int32_t max_tokens_per_step = 512;
    int32_t max_seqs_per_step = 64;
    bool decode_graphs = false;  // [cuda] graphs: ModelShard::enable_decode_graphs on every shard
};

struct ShardReport {
    std::string device;
    int32_t stage, rank, layer_begin, layer_end;
    uint64_t weight_bytes, kv_bytes, workspace_bytes;
};

class Executor {
public:
    // In-process: backends has at least plan.devices(), one per device, in the order of the
    // plugin host's devices; shard (stage, rank) runs on backends[stage * tensor + rank]. With
    // an MPI world (one shard per process): world rank w holds shard w on backends[0], and
    // plan.devices() must equal the world size. The backends, the plugin host and the world
    // must outlive the executor. Thread: the loading thread.
    static Expected<std::unique_ptr<Executor>> create(const LlamaLayout& layout,
                                                      std::vector<Backend*> backends,
                                                      PluginHost& plugins,
                                                      const ExecutorOptions& options,
                                                      MpiWorld* world = nullptr);
    ~Executor();

    // Run one step. logits (host memory) receives [logit rows][n_vocab]: the rows of each
    // sequence wanting logits (its last logit_tokens tokens, in order), in sequence order;
    // at most max_seqs_per_step rows in all (the workspace holds that many). A failed step leaves the communicators rebuilt for the next one.
    // Thread: one caller at a time (the engine loop).
    [[nodiscard]] Status forward(std::span<const StepSequence> sequences, std::vector<float>& logits);

    // Steps in flight at once, so that with several pipeline stages one step's micro-batches
    // run on the later stages while the next step's run on the earlier ones (the engine keeps
    // two groups of decoding sequences in flight; see Engine::decode_in_flight). launch()
    // checks the step, copies everything it needs from `sequences` (tokens, block tables) and
    // posts it to every device after the steps launched before it; wait() blocks until it is
    // done and swaps its logits into `logits` ([sequences wanting logits][n_vocab]). Every
    // launched step must be waited for before the executor is destroyed. In-process only
    // (overlaps_steps()). Thread: the engine loop, like forward().
    struct InFlight;
    struct InFlightDeleter {
        void operator()(InFlight* f) const;
    };
    using InFlightPtr = std::unique_ptr<InFlight, InFlightDeleter>;
    bool overlaps_steps() const { return !world_ && options_.plan.pipeline > 1; }
    int peak_steps_in_flight() const { return peak_in_flight_; }  // most at once so far
    [[nodiscard]] Expected<InFlightPtr> launch(std::span<const StepSequence> sequences);
    [[nodiscard]] Status wait(InFlight& flight, std::vector<float>& logits);
    // Encode one image with the vision plugin of the first device (on its worker, waiting for
    // it): out receives encoder.tokens_per_image() x embedding_dim() floats. Errors: no vision
    // plugin loaded; the encoder's or the plugin's. Thread: the engine loop.
    [[nodiscard]] Status encode_image(const VisionEncoder& encoder, const RgbImage& image, float* out);

    // A request with cross-attention images is done: every shard drops the image keys and
    // values it keeps for these states (after the steps already posted). Thread: the engine loop.
    void release_image_kv(uint64_t states_id);
    // Bytes of image keys and values all shards hold now (read on the engine thread between
    // steps; a shard updates its count on its worker).
    uint64_t image_kv_bytes() const;

    // Encode one image of a cross-attention model (mllama) with the first device's vision
    // plugin, on its worker. Errors as encode_image's. Thread: the engine loop.
    [[nodiscard]] Status encode_mllama_image(const MllamaVisionModel& model, const RgbImage& image,
                                             MllamaImageFeatures& out);

    // MPI ranks other than 0: run the steps rank 0 broadcasts until it calls stop_followers().
    [[nodiscard]] Status follow();
    // Rank 0: tell the followers to return from follow(). No-op in-process.
    void stop_followers();
    bool is_leader() const { return !world_ || world_->rank() == 0; }

    KvBlockAllocator& blocks() { return *blocks_; }
    const LlamaHParams& hparams() const { return hp_; }
    const ExecutorOptions& options() const { return options_; }
    std::vector<ShardReport> shards() const;

private:
    Executor() = default;
    void rebuild_groups();
    std::vector<MicroBatch> make_batches(std::span<const StepSequence> sequences, int32_t* logit_rows) const;
    Status check_step(std::span<const StepSequence> sequences) const;
    void post_batches(InFlight& flight);
    Status finish_batches(InFlight& flight);
    Status run_batches(std::vector<MicroBatch> batches, std::vector<float>& logits);
    int32_t logits_producer() const;  // world rank of (last stage, tensor rank 0)
    // Run `encode` with the first device's vision plugin on that device's worker, and wait.
    Status on_vision_device(const std::function<Status(PluginInstance&)>& encode);

    MpiWorld* world_ = nullptr;
    std::unique_ptr<Communicator> world_comm_;
    std::vector<float> follower_logits_;
    int in_flight_ = 0;           // steps posted and not yet waited for (engine thread)
    int peak_in_flight_ = 0;
    bool needs_rebuild_ = false;  // a step failed: rebuild the groups once none is in flight

    LlamaHParams hp_;
    ExecutorOptions options_;
    PluginHost* plugins_ = nullptr;
    std::vector<Backend*> backends_;
    std::vector<std::unique_ptr<ModelShard>> shards_;  // stage-major
    std::unique_ptr<KvBlockAllocator> blocks_;
    std::vector<std::unique_ptr<CommunicatorGroup>> tensor_groups_;  // per stage
    std::vector<std::unique_ptr<CommunicatorGroup>> pipe_groups_;    // per tensor rank
    std::vector<std::unique_ptr<Communicator>> tensor_comms_;     // per shard
    std::vector<std::unique_ptr<Communicator>> pipe_comms_;       // per shard
};

}  // namespace llmq

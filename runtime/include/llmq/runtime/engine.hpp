// The engine: continuous batching over the executor.
//
// Each step() takes one decode token from every running sequence whose consumer is ready,
// continues prefills in chunks, and admits waiting requests, within the step's token and
// sequence budgets; KV blocks are allocated as sequences grow. When blocks run out, the
// lowest-priority, most recently admitted sequence is preempted: its blocks are freed and
// it returns to the queue to be recomputed later, so nothing is ever corrupted. Logits of a
// sequence depend only on its own tokens (kernels compute each row alike whatever the
// batch), so a request gives the same tokens alone or in a batch of 32.
//
// Threads: submit/cancel/stats from any thread; step() from one engine thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "llmq/runtime/executor.hpp"
#include "llmq/runtime/request.hpp"
#include "llmq/runtime/sampler.hpp"
#include "llmq/runtime/stop_strings.hpp"
#include "llmq/runtime/tokenizer.hpp"
#include "llmq/runtime/mllama_vision.hpp"
#include "llmq/runtime/vision_encoder.hpp"

namespace llmq {

struct EngineOptions {
    int32_t max_tokens_per_step = 512;
    int32_t max_running = 32;
    int32_t max_queued = 256;
    int32_t max_new_tokens = 4096;     // cap on a request's max_tokens
    int32_t context_length = 2048;     // positions per sequence
    int32_t prefill_chunk = 256;       // largest prefill piece of one sequence per step
    int32_t max_running_per_owner = 0; // running sequences of one non-zero owner; 0 = no cap
    std::chrono::milliseconds stall_timeout{5000};
};

struct EngineStats {
    int32_t running = 0;
    int32_t queued = 0;
    int32_t kv_blocks_used = 0;
    int32_t kv_blocks_total = 0;
    uint64_t requests_finished = 0;
    uint64_t tokens_generated = 0;
    uint64_t tokens_prefilled = 0;
    uint64_t preemptions = 0;
    uint64_t steps = 0;
    double tokens_per_s = 0;  // generated tokens per second over the last few seconds
};

class Engine {
public:
    Engine(const Tokenizer& tokenizer, Executor& executor, EngineOptions options);
    ~Engine();

    // Validate and queue a request. Errors: invalid_argument naming the field;
    // unavailable("busy") when the queue is full. Thread-safe.
    [[nodiscard]] Expected<uint64_t> submit(GenerateRequest request,
                                            std::shared_ptr<RequestSink> sink);
    // Cancel a request (queued or running); its sink gets on_finish(cancelled) on the
    // engine thread. Unknown ids are ignored. Thread-safe.
    void cancel(uint64_t id);

    // One engine step. Returns false when there was nothing to do. Engine thread.
    bool step();
    // Block until there may be work or the timeout passes. Engine thread.
    void wait_for_work(std::chrono::milliseconds timeout);
    // Wake wait_for_work (e.g. to stop). Thread-safe.
    void notify();
    bool idle() const;

    // Give the engine a vision encoder (LLaVA-style images; null: text only). Called before the
    // first submit; the encoder must outlive the engine.
    void set_vision(const VisionEncoder* vision) { vision_ = vision; }
    const VisionEncoder* vision() const { return vision_; }
    // Or a cross-attention model's vision part (Llama 3.2 Vision, mllama_vision.hpp): each
    // image takes the place of an "<|image|>" in the text prompt (all before the text, after
    // BOS, when it has none), is encoded at first scheduling, and its rows become the request's
    // cross-attention states. The model must outlive the engine.
    void set_mllama_vision(const MllamaVisionModel* model, ImageLimits limits) {
        mllama_vision_ = model;
        mllama_limits_ = limits;
    }

    EngineStats stats() const;
    const EngineOptions& options() const { return options_; }
    const Tokenizer& tokenizer() const { return tokenizer_; }

private:
    struct Sequence;
    void finish(Sequence& s, FinishReason reason, std::string error = {});
    void preempt(Sequence& s);
    void emit_token(Sequence& s, int32_t token, float logprob);
    // What one step produced, for the counters.
    struct StepTokens {
        uint64_t generated = 0, prefilled = 0;
        std::chrono::steady_clock::time_point at;
    };
    // Advances each sequence by its count, samples those whose step[i] wants logits (rows of
    // `logits` in order; the sampler may change them) and streams the tokens.
    StepTokens sample_and_stream(const std::vector<Sequence*>& seqs, const std::vector<int32_t>& counts,
                                 const std::vector<StepSequence>& step, std::vector<float>& logits);
    void record_step(const StepTokens& done);
    // Decode steps with a pipeline kept full (Executor::launch/wait): the sequences are cut
    // into one group per stage, and each group's next token is launched as soon as its last
    // one is sampled, while the other groups are still on the later stages. A few rounds, fewer
    // once a request arrives or is cancelled; then step() schedules as usual.
    void decode_in_flight(const std::vector<Sequence*>& seqs);
    Status encode_images(Sequence& s);
    std::vector<int32_t> place_image_tokens(const std::string& text, size_t images, bool add_bos,
                                            bool parse_special) const;

    const Tokenizer& tokenizer_;
    Executor& executor_;
    const VisionEncoder* vision_ = nullptr;
    const MllamaVisionModel* mllama_vision_ = nullptr;
    ImageLimits mllama_limits_;
    EngineOptions options_;
    int32_t max_blocks_per_seq_;
    std::unordered_map<uint64_t, int32_t> running_by_owner_;  // engine thread; owners != 0

    mutable std::mutex mutex_;  // guards incoming_, cancels_, and the counters read by stats()
    std::condition_variable work_cv_;
    std::deque<std::unique_ptr<Sequence>> incoming_;
    std::vector<uint64_t> cancels_;
    uint64_t next_id_ = 1;
    bool woken_ = false;
    EngineStats counters_;
    std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> rate_window_;

    // Engine thread only.
    std::deque<std::unique_ptr<Sequence>> waiting_;
    std::vector<std::unique_ptr<Sequence>> running_;
    std::vector<float> logits_;
    uint64_t admissions_ = 0;
};

}  // namespace llmq

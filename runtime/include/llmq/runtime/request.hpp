// What a client asks the engine for, and what it gets back.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmq/runtime/cross_attention.hpp"

#include "llmq/runtime/sampler.hpp"

namespace llmq {

struct GenerateRequest {
    std::string prompt;                  // text; used when prompt_tokens is empty
    std::vector<int32_t> prompt_tokens;  // ids, taken as they are (no BOS added)
    bool add_bos = true;                 // text prompts: prepend BOS when the model wants it
    bool parse_special = false;          // text prompts: "<|eot_id|>" etc. become control tokens
    SamplingParams sampling;
    int32_t priority = 0;                // higher runs first and is preempted last
    uint64_t owner = 0;                  // who asked (the daemon: the connection); 0 = nobody
    // Encoded images (PNG or JPEG bytes), in prompt order, for a model with a vision projector:
    // each takes the place of an "<image>" marker of the text prompt, or all come before the
    // text when it has none; in a token prompt, each takes the place of one image_prompt_token
    // (vision_encoder.hpp).
    std::vector<std::vector<uint8_t>> images;
    // A cross-attention model's (mllama's) image states, given directly (in-process callers
    // and tests; the engine makes them from `images` for such a model): one image per
    // <|image|> token of the prompt, in order (cross_attention.hpp).
    std::shared_ptr<const CrossAttentionStates> cross_states;
};

enum class FinishReason { stop, length, cancelled, error };
const char* finish_reason_name(FinishReason r);  // "stop" | "length" | "cancelled" | "error"

struct RequestTimings {
    double queue_ms = 0;      // submit → first scheduled
    double prefill_ms = 0;    // first scheduled → first token
    double decode_ms = 0;     // first token → last token
    double prefill_tokens_per_s = 0;
    double decode_tokens_per_s = 0;
};

struct FinishInfo {
    FinishReason reason = FinishReason::stop;
    std::vector<int32_t> prompt_tokens;  // as run, BOS included
    std::vector<int32_t> tokens;         // generated ids
    std::string text;                    // generated text (stop string excluded)
    RequestTimings timings;
    std::string error;                   // reason == error
    bool stop_string = false;            // reason == stop because a stop string appeared
};

// Where a request's results go. Called on the engine thread only, in order: on_token for
// each emitted piece, then exactly one on_finish. ready() false pauses the request (its
// consumer is not reading); the engine cancels it after the stall timeout.
class RequestSink {
public:
    virtual ~RequestSink() = default;
    virtual bool ready() { return true; }
    // The logits a token is about to be sampled from (before penalties), when wanted().
    virtual bool wants_logits() const { return false; }
    virtual void on_logits(std::span<const float> /*logits*/) {}
    virtual void on_token(int32_t token, std::string_view text, float logprob) = 0;
    virtual void on_finish(const FinishInfo& info) = 0;
};

}  // namespace llmq

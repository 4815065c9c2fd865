// GenerateRequest: what a client asks the daemon to generate, as plain owned values.
//
// The client fills one and submits it (client.hpp); the daemon gets the same type back from the
// request decoder (request_decoder.hpp), validated. The defaults below are what a client gets
// when it sets nothing; the daemon applies its own limits on top.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmq::ipc {

// In a token prompt that carries images, each kImagePromptToken marks where one image goes (the
// daemon widens it to the image's positions); the ids of a chat prompt rendered with image
// parts (the chat_template command) hold them. Elsewhere it is an invalid id, as any negative.
inline constexpr std::int32_t kImagePromptToken = -1;

struct SamplingParams {
    float temperature = 0.8f;         // 0 = greedy; finite, 0..100
    std::int32_t top_k = 40;          // 0 = off; 0..vocab size
    float top_p = 0.95f;              // 1 = off; (0, 1]
    float min_p = 0.05f;              // 0 = off; [0, 1]
    float repetition_penalty = 1.0f;  // 1 = off; (0, 100]
    float presence_penalty = 0.0f;    // 0 = off; [-100, 100]
    float frequency_penalty = 0.0f;   // 0 = off; [-100, 100]
    std::int32_t penalty_last_n = 64; // tokens the penalties look back; -1 = whole context
    std::uint64_t seed = 0;           // used only when seed_set
    bool seed_set = false;            // false: the daemon picks a seed
};

struct GenerateRequest {
    // The prompt: text (UTF-8), or token ids when prompt_is_tokens.
    std::string prompt_text;
    std::vector<std::int32_t> prompt_tokens;
    bool prompt_is_tokens = false;
    bool add_bos = true;  // prepend the model's BOS token to a text prompt

    SamplingParams sampling;
    std::int32_t max_tokens = 0;  // tokens to generate; 0 = the daemon's limit
    bool ignore_eos = false;      // keep generating after an end-of-sequence token
    bool logprobs = false;        // report each token's log-probability
    std::vector<std::string> stop;  // up to 8 strings of up to 256 bytes each
    std::int32_t priority = 0;    // higher runs first and is preempted last; -1000..1000
    // Encoded images (PNG or JPEG bytes, as read from their files) for a model with a vision
    // projector, in prompt order: each at an "<image>" of a text prompt (else all before it),
    // or at a kImagePromptToken of a token prompt (one per image). The daemon decodes and checks
    // them; limits: [ipc] max_images and max_image_bytes (all images together).
    std::vector<std::vector<std::uint8_t>> images;
};

}  // namespace llmq::ipc

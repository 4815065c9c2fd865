// The sampler: turns one position's logits into the next token.
//
// Order of operations in Sampler::sample():
//   1. penalties over the last penalty_last_n tokens of recent_tokens, applied to the logits
//      in place: repetition as in CTRL / llama.cpp (a positive logit is divided by
//      repetition_penalty, a negative one multiplied), then presence and frequency as in
//      OpenAI's API (logit -= presence_penalty * [count > 0] + frequency_penalty * count); a
//      finite logit stays finite (saturates at the largest float);
//   2. temperature below SamplingLimits::greedy_temperature (0 and denormals included, whose
//      reciprocal would be infinite): the argmax (the lowest id wins a tie); nothing is drawn;
//   3. top-k: the k largest logits (no full sort of the vocabulary);
//   4. softmax of logit / temperature over what is left;
//   5. top-p: the smallest set of most likely tokens whose probability reaches top_p;
//   6. min-p: drop tokens whose probability is below min_p x the most likely one's;
//   7. draw from what is left, renormalised, with the sampler's own generator
//      (xoshiro256** seeded through splitmix64; uniform doubles from the top 53 bits), so the
//      same seed gives the same tokens on every machine and standard library.
// Ties in logits are broken by token id everywhere, so results never depend on sort order.
// NaN logits count as -inf. A +inf logit wins outright (the lowest such id). No logit and no
// parameter value can make the draw see a NaN (see the constructor).
//
// Threads: one Sampler per sequence; a Sampler is not thread-safe, distinct Samplers may run
// on distinct threads at once (their scratch space is per thread).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

struct SamplingParams {
    float temperature = 0.8f;          // 0 = greedy (and below 1e-4); [0, 100]
    int32_t top_k = 40;                // 0 = off; [0, 2^24]
    float top_p = 0.95f;               // 1 = off; [0, 1]
    float min_p = 0.05f;               // 0 = off; [0, 1]
    float repetition_penalty = 1.0f;   // 1 = off; (0, 100]
    float presence_penalty = 0.0f;     // 0 = off; [-100, 100]
    float frequency_penalty = 0.0f;    // 0 = off; [-100, 100]
    int32_t penalty_last_n = 64;       // tokens the penalties look back; 0 = off, -1 = all given
    uint64_t seed = 0;                 // used when seed_set or non-zero; else drawn from the OS
    bool seed_set = false;             // true: use `seed` even when it is 0
    int32_t max_tokens = 128;          // tokens to generate; [1, 2^24] (the engine enforces it)
    std::vector<std::string> stop;     // stop strings (see stop_strings.hpp); at most 16, each
                                       // 1 to 256 bytes of valid UTF-8
    bool ignore_eos = false;           // keep generating after an end-of-generation token
    int32_t logprobs = 0;              // 0 = none; n > 0: the chosen token's log-probability
                                       // and the n most likely alternatives; [0, 20]
};

// The largest values validate() accepts.
struct SamplingLimits {
    static constexpr int32_t top_k = 1 << 24;
    static constexpr int32_t penalty_last_n = 1 << 24;
    static constexpr int32_t max_tokens = 1 << 24;
    static constexpr size_t stop_strings = 16;
    static constexpr size_t stop_string_bytes = 256;
    static constexpr int32_t logprobs = 20;
    // Temperatures below this sample greedily: at 1e-4 a logit gap of 0.01 already weighs
    // e^-100, so the draw could differ from the argmax only between near-ties, and 1/t stays
    // far from overflowing.
    static constexpr float greedy_temperature = 1e-4f;
};

// ok, or invalid_argument naming the first bad field and its value, e.g.
// "sampling parameter top_p = 1.5: must be between 0 and 1". NaN and infinities are refused
// everywhere.
[[nodiscard]] Status validate(const SamplingParams& params);

struct TokenLogprob {
    int32_t token;
    float logprob;
};

class Sampler {
public:
    // Call validate() first. Values outside the valid ranges are clamped into them (NaN reads
    // as the default), so a bad value can never make sample() misbehave.
    explicit Sampler(const SamplingParams& params);

    // Choose the next token. `logits` (one per vocabulary entry) gets the penalties applied in
    // place; other steps work on scratch space. recent_tokens: the sequence so far (prompt and
    // generated), oldest first; only its last penalty_last_n entries are read, and ids outside
    // [0, logits.size()) are ignored. Returns the token id, or -1 when no token can be chosen
    // (logits empty, or all of them NaN or -inf).
    int32_t sample(std::span<float> logits, std::span<const int32_t> recent_tokens);

    // The chosen token's log-probability under the model's distribution after penalties
    // (log-softmax of the penalised logits at temperature 1, before top-k, top-p and min-p),
    // as OpenAI-style APIs report it. Only computed when params.logprobs > 0; NaN otherwise
    // and before the first sample().
    float last_logprob() const { return last_logprob_; }

    // The params.logprobs most likely tokens of the same distribution, most likely first
    // (ties: lower id first). Empty when params.logprobs == 0. Valid until the next sample().
    std::span<const TokenLogprob> last_top_logprobs() const { return top_logprobs_; }

    // The seed in use: params.seed, or the one drawn from the OS. Report it so a run can be
    // repeated.
    uint64_t seed() const { return seed_; }

    const SamplingParams& params() const { return params_; }

private:
    void apply_penalties(std::span<float> logits, std::span<const int32_t> recent) const;
    void compute_logprobs(std::span<const float> logits, int32_t chosen);
    int32_t draw(std::span<const float> logits);
    double next_uniform();

    SamplingParams params_;
    uint64_t seed_ = 0;
    uint64_t state_[4] = {};
    float last_logprob_;
    std::vector<TokenLogprob> top_logprobs_;
};

}  // namespace llmq

#include "llmq/runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace llmq {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();
constexpr float kMaxFinite = std::numeric_limits<float>::max();

// top-k up to this size is selected with a heap in one pass over the logits (most logits are
// rejected by one comparison); larger k goes through nth_element on a copy.
constexpr int32_t kHeapTopKLimit = 1024;

struct Candidate {
    float logit;
    int32_t id;
};

// The one order every step uses: larger logit first, then lower id. A strict total order,
// so selections and sorts give the same result whatever algorithm the library uses.
bool ranks_before(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Scratch space of the calling thread, reused across calls and Samplers, so a Sampler per
// sequence costs no vocabulary-sized memory of its own.
struct Scratch {
    std::vector<Candidate> candidates;
    std::vector<Candidate> ranked;
    std::vector<float> probs;
    std::vector<int32_t> window;
};
thread_local Scratch scratch;

// The k best entries of `logits` (skipping -inf), best first. One pass with a heap whose
// top is the worst kept entry.
void select_top_k_heap(std::span<const float> logits, int32_t k, std::vector<Candidate>& out) {
    out.clear();
    const int32_t n = static_cast<int32_t>(logits.size());
    for (int32_t i = 0; i < n; ++i) {
        const float v = logits[i];
        if (v == kNegInf) continue;
        if (static_cast<int32_t>(out.size()) < k) {
            out.push_back({v, i});
            std::push_heap(out.begin(), out.end(), ranks_before);
        } else if (v > out.front().logit) {
            // Equal logits never displace: the kept one has the lower id.
            std::pop_heap(out.begin(), out.end(), ranks_before);
            out.back() = {v, i};
            std::push_heap(out.begin(), out.end(), ranks_before);
        }
    }
    std::sort_heap(out.begin(), out.end(), ranks_before);
}

// The index of the largest value, the lowest index among equals. Sixteen independent lanes
// let the compiler vectorise the scan (a single running maximum is one long dependency
// chain); each lane keeps its first maximum, and lanes are merged by value, then index.
int32_t argmax(std::span<const float> values) {
    constexpr int32_t kLanes = 16;
    const auto n = static_cast<int32_t>(values.size());
    float best[kLanes];
    int32_t where[kLanes];
    for (int32_t j = 0; j < kLanes; ++j) {
        best[j] = kNegInf;
        where[j] = 0;
    }
    int32_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (int32_t j = 0; j < kLanes; ++j) {
            const bool greater = values[i + j] > best[j];
            best[j] = greater ? values[i + j] : best[j];
            where[j] = greater ? i + j : where[j];
        }
    }
    int32_t result = where[0];
    float result_value = best[0];
    for (int32_t j = 1; j < kLanes; ++j) {
        if (best[j] > result_value || (best[j] == result_value && where[j] < result)) {
            result_value = best[j];
            result = where[j];
        }
    }
    for (; i < n; ++i) {
        if (values[i] > result_value) {
            result_value = values[i];
            result = i;
        }
    }
    // Every value -inf: the lanes never moved; index 0 is the lowest.
    return result_value == kNegInf ? 0 : result;
}

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

float clamp_or(float v, float lo, float hi, float fallback) {
    if (std::isnan(v)) return fallback;
    return std::clamp(v, lo, hi);
}

}  // namespace

Sampler::Sampler(const SamplingParams& params)
    : params_(params), last_logprob_(std::numeric_limits<float>::quiet_NaN()) {
    const SamplingParams defaults;
    params_.temperature = clamp_or(params.temperature, 0.0f, 100.0f, defaults.temperature);
    params_.top_k = std::clamp(params.top_k, 0, SamplingLimits::top_k);
    params_.top_p = clamp_or(params.top_p, 0.0f, 1.0f, defaults.top_p);
    params_.min_p = clamp_or(params.min_p, 0.0f, 1.0f, defaults.min_p);
    params_.repetition_penalty =
        clamp_or(params.repetition_penalty, 1e-6f, 100.0f, defaults.repetition_penalty);
    params_.presence_penalty = clamp_or(params.presence_penalty, -100.0f, 100.0f, 0.0f);
    params_.frequency_penalty = clamp_or(params.frequency_penalty, -100.0f, 100.0f, 0.0f);
    params_.penalty_last_n = std::clamp(params.penalty_last_n, -1, SamplingLimits::penalty_last_n);
    params_.logprobs = std::clamp(params.logprobs, 0, SamplingLimits::logprobs);

    if (params.seed_set || params.seed != 0) {
        seed_ = params.seed;
    } else {
        std::random_device device;
        seed_ = (static_cast<uint64_t>(device()) << 32) ^ device();
    }
    uint64_t x = seed_;
    for (uint64_t& word : state_) word = splitmix64(x);
}

// xoshiro256** (Blackman and Vigna), then the top 53 bits as a double in [0, 1).
double Sampler::next_uniform() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return static_cast<double>(result >> 11) * 0x1.0p-53;
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> recent) const {
    const bool repetition = params_.repetition_penalty != 1.0f;
    const bool presence = params_.presence_penalty != 0.0f;
    const bool frequency = params_.frequency_penalty != 0.0f;
    if (!(repetition || presence || frequency) || params_.penalty_last_n == 0) return;

    if (params_.penalty_last_n > 0 && recent.size() > static_cast<size_t>(params_.penalty_last_n))
        recent = recent.last(static_cast<size_t>(params_.penalty_last_n));
    std::vector<int32_t>& window = scratch.window;
    window.clear();
    const auto n = static_cast<int64_t>(logits.size());
    for (int32_t token : recent)
        if (token >= 0 && token < n) window.push_back(token);
    std::sort(window.begin(), window.end());

    for (size_t i = 0; i < window.size();) {
        const int32_t token = window[i];
        size_t count = 0;
        while (i < window.size() && window[i] == token) ++i, ++count;
        float& logit = logits[static_cast<size_t>(token)];
        const bool finite = std::isfinite(logit);
        if (repetition)
            logit = logit > 0 ? logit / params_.repetition_penalty
                              : logit * params_.repetition_penalty;
        logit -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(count);
        // A penalty may not overflow a finite logit into +inf (which would win outright) or
        // -inf (which would leave no token to choose).
        if (finite) logit = std::clamp(logit, -kMaxFinite, kMaxFinite);
    }
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> recent_tokens) {
    last_logprob_ = std::numeric_limits<float>::quiet_NaN();
    top_logprobs_.clear();
    if (logits.empty() || logits.size() > static_cast<size_t>(INT32_MAX)) return -1;

    for (float& v : logits) v = std::isnan(v) ? kNegInf : v;   // a select: vectorises
    apply_penalties(logits, recent_tokens);   // finite penalties keep every value a non-NaN

    int32_t chosen;
    if (params_.temperature < SamplingLimits::greedy_temperature || params_.top_k == 1) {
        const int32_t best = argmax(logits);
        chosen = logits[static_cast<size_t>(best)] == kNegInf ? -1 : best;
    } else {
        chosen = draw(logits);
    }
    if (chosen >= 0 && params_.logprobs > 0) compute_logprobs(logits, chosen);
    return chosen;
}

// Steps 3 to 7 of the header. The kept set is always "every candidate that ranks at or before
// a cutoff and passes min-p", and it is walked for the draw in a canonical order (rank order
// when the candidates are few and sorted, id order otherwise), so the token drawn for a seed
// does not depend on how the library's selection algorithms permute elements.
int32_t Sampler::draw(std::span<const float> logits) {
    const int32_t n = static_cast<int32_t>(logits.size());
    const int32_t k = params_.top_k > 0 ? std::min(params_.top_k, n) : n;
    std::vector<Candidate>& candidates = scratch.candidates;
    bool sorted = false;   // candidates are in rank order (else in id order)

    if (k <= kHeapTopKLimit && k < n) {
        select_top_k_heap(logits, k, candidates);
        sorted = true;
    } else {
        candidates.clear();
        for (int32_t i = 0; i < n; ++i)
            if (logits[i] != kNegInf) candidates.push_back({logits[i], i});
        if (k < static_cast<int32_t>(candidates.size())) {
            // Find the k-th best on a copy, then keep, in id order, everything up to it.
            std::vector<Candidate>& ranked = scratch.ranked;
            ranked = candidates;
            std::nth_element(ranked.begin(), ranked.begin() + (k - 1), ranked.end(), ranks_before);
            const Candidate kth = ranked[static_cast<size_t>(k - 1)];
            std::erase_if(candidates, [&](const Candidate& c) { return ranks_before(kth, c); });
        }
    }
    if (candidates.empty()) return -1;

    // A +inf logit takes all the probability; the lowest such id wins.
    Candidate best = candidates.front();
    for (const Candidate& c : candidates)
        if (ranks_before(c, best)) best = c;
    if (best.logit == kPosInf) return best.id;

    // Softmax numerators relative to the best (which gets exactly 1) and their sum.
    const float inverse_temperature = 1.0f / params_.temperature;
    std::vector<float>& probs = scratch.probs;
    probs.resize(candidates.size());
    double total = 0.0;
    for (size_t i = 0; i < candidates.size(); ++i) {
        probs[i] = std::exp((candidates[i].logit - best.logit) * inverse_temperature);
        total += probs[i];
    }
    // min-p: p / p_max >= min_p, and p_max's numerator is 1.
    const float min_numerator = params_.min_p;
    auto passes_min_p = [&](size_t i) { return probs[i] >= min_numerator; };

    // top-p: walk in rank order until the mass reaches top_p; the token that reaches it is the
    // cutoff. Without top-p the cutoff is past every candidate.
    bool has_cutoff = false;
    Candidate cutoff{};
    if (params_.top_p < 1.0f) {
        const double target = static_cast<double>(params_.top_p) * total;
        double mass = 0.0;
        if (sorted) {
            for (size_t i = 0; i < candidates.size() && passes_min_p(i); ++i) {
                mass += probs[i];
                if (mass >= target) {
                    cutoff = candidates[i];
                    has_cutoff = true;
                    break;
                }
            }
        } else {
            // Rank only the min-p survivors, a growing prefix at a time: a peaked
            // distribution reaches top_p after a few tokens and never pays for a full sort.
            std::vector<Candidate>& ranked = scratch.ranked;
            ranked.clear();
            for (size_t i = 0; i < candidates.size(); ++i)
                if (passes_min_p(i)) ranked.push_back(candidates[i]);
            size_t ready = 0;
            const float temperature_scale = inverse_temperature;
            for (size_t i = 0; i < ranked.size() && !has_cutoff; ++i) {
                if (i == ready) {
                    const size_t next = std::min(ranked.size(), std::max<size_t>(64, ready * 4));
                    if (next < ranked.size())
                        std::nth_element(ranked.begin() + static_cast<ptrdiff_t>(ready),
                                         ranked.begin() + static_cast<ptrdiff_t>(next),
                                         ranked.end(), ranks_before);
                    std::sort(ranked.begin() + static_cast<ptrdiff_t>(ready),
                              ranked.begin() + static_cast<ptrdiff_t>(next), ranks_before);
                    ready = next;
                }
                // The same expression as probs[], so the same float.
                mass += std::exp((ranked[i].logit - best.logit) * temperature_scale);
                if (mass >= target) {
                    cutoff = ranked[i];
                    has_cutoff = true;
                }
            }
        }
    }
    auto kept = [&](size_t i) {
        return passes_min_p(i) && (!has_cutoff || !ranks_before(cutoff, candidates[i]));
    };

    double kept_mass = 0.0;
    for (size_t i = 0; i < candidates.size(); ++i)
        if (kept(i)) kept_mass += probs[i];
    const double r = next_uniform() * kept_mass;
    double mass = 0.0;
    int32_t last_kept = best.id;
    for (size_t i = 0; i < candidates.size(); ++i) {
        if (!kept(i)) continue;
        mass += probs[i];
        last_kept = candidates[i].id;
        if (r < mass) return last_kept;
    }
    return last_kept;  // r rounded up to kept_mass
}

void Sampler::compute_logprobs(std::span<const float> logits, int32_t chosen) {
    const float max = logits[static_cast<size_t>(argmax(logits))];
    auto logprob_of = [&](float v, double log_total) -> float {
        if (max == kPosInf) return v == kPosInf ? static_cast<float>(-log_total) : kNegInf;
        return static_cast<float>(static_cast<double>(v) - max - log_total);
    };
    double total = 0.0;
    if (max == kPosInf) {
        for (float v : logits) total += v == kPosInf ? 1.0 : 0.0;
    } else {
        for (float v : logits) total += std::exp(v - max);   // float exp, double sum
    }
    const double log_total = std::log(total);
    last_logprob_ = logprob_of(logits[static_cast<size_t>(chosen)], log_total);

    std::vector<Candidate> best;
    select_top_k_heap(logits, params_.logprobs, best);
    for (const Candidate& c : best) top_logprobs_.push_back({c.id, logprob_of(c.logit, log_total)});
}

}  // namespace llmq

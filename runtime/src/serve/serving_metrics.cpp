#include "llmq/runtime/serving_metrics.hpp"

namespace llmq {

namespace {

// Prefill on a CPU takes milliseconds to tens of seconds; a decoded token 1 ms to a second.
constexpr std::array<double, LatencyHistogram::kBuckets> kFirstTokenBounds = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80};
constexpr std::array<double, LatencyHistogram::kBuckets> kPerTokenBounds = {
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5};

}  // namespace

const char* request_outcome_name(RequestOutcome outcome) {
    switch (outcome) {
        case RequestOutcome::eos: return "eos";
        case RequestOutcome::length: return "length";
        case RequestOutcome::stop_string: return "stop_string";
        case RequestOutcome::cancelled: return "cancelled";
        case RequestOutcome::error: return "error";
        case RequestOutcome::rejected: return "rejected";
    }
    return "error";
}

void LatencyHistogram::observe(double seconds) {
    if (!(seconds >= 0)) seconds = 0;  // NaN or a clock step backwards
    for (std::size_t i = 0; i < kBuckets; ++i) {
        if (seconds <= bounds_[i]) {
            ++counts_[i];
            break;
        }
    }
    sum_ += seconds;
    ++count_;
}

nlohmann::json LatencyHistogram::to_json() const {
    nlohmann::json buckets = nlohmann::json::array();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        cumulative += counts_[i];
        buckets.push_back({bounds_[i], cumulative});
    }
    return {{"buckets", buckets}, {"sum", sum_}, {"count", count_}};
}

ServingMetrics::ServingMetrics() : time_to_first_token_(kFirstTokenBounds), time_per_output_token_(kPerTokenBounds) {}

void ServingMetrics::record_finished(RequestOutcome outcome, std::uint64_t prompt_tokens,
                                     std::uint64_t generated_tokens, double queue_ms,
                                     double prefill_ms, double decode_ms) {
    std::lock_guard lock(mutex_);
    ++outcomes_[static_cast<std::size_t>(outcome)];
    prompt_tokens_ += prompt_tokens;
    generated_tokens_ += generated_tokens;
    if (generated_tokens > 0) time_to_first_token_.observe((queue_ms + prefill_ms) / 1000.0);
    if (generated_tokens > 1)
        time_per_output_token_.observe(decode_ms / 1000.0 / static_cast<double>(generated_tokens - 1));
}

void ServingMetrics::record_rejected() {
    std::lock_guard lock(mutex_);
    ++outcomes_[static_cast<std::size_t>(RequestOutcome::rejected)];
}

nlohmann::json ServingMetrics::to_json() const {
    std::lock_guard lock(mutex_);
    nlohmann::json requests = nlohmann::json::object();
    for (std::size_t i = 0; i < outcomes_.size(); ++i)
        requests[request_outcome_name(static_cast<RequestOutcome>(i))] = outcomes_[i];
    return {{"requests", requests},
            {"prompt_tokens", prompt_tokens_},
            {"generated_tokens", generated_tokens_},
            {"time_to_first_token_seconds", time_to_first_token_.to_json()},
            {"time_per_output_token_seconds", time_per_output_token_.to_json()}};
}

}  // namespace llmq

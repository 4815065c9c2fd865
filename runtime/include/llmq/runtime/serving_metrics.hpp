// ServingMetrics: the daemon's request counters and latency histograms, for the `metrics`
// control command (and from there the gateway's Prometheus /metrics).
//
// The engine thread records each finished or refused request; the Asio thread reads a snapshot.
// Counters only grow (Prometheus counters); histograms are cumulative, with the bucket bounds
// below, in seconds.
//
// Thread-safe: every member takes the object's mutex; recording is a few additions.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include <nlohmann/json.hpp>

namespace llmq {

// How a request ended, as the metrics count it ("requests by outcome").
enum class RequestOutcome { eos, length, stop_string, cancelled, error, rejected };
const char* request_outcome_name(RequestOutcome outcome);  // "eos", "length", ...

class LatencyHistogram {
public:
    static constexpr std::size_t kBuckets = 14;
    explicit LatencyHistogram(const std::array<double, kBuckets>& upper_bounds) : bounds_(upper_bounds) {}
    void observe(double seconds);
    // {"buckets": [[le, cumulative count], ...], "sum": seconds, "count": n}; the +Inf bucket is
    // "count".
    nlohmann::json to_json() const;

private:
    std::array<double, kBuckets> bounds_;
    std::array<std::uint64_t, kBuckets> counts_{};  // per bucket, not cumulative
    double sum_ = 0;
    std::uint64_t count_ = 0;
};

class ServingMetrics {
public:
    ServingMetrics();

    // A request that ran: its outcome, token counts and timings (milliseconds, as the engine's
    // RequestTimings). Time to first token = queue + prefill; time per output token = decode
    // time over the tokens after the first.
    void record_finished(RequestOutcome outcome, std::uint64_t prompt_tokens,
                         std::uint64_t generated_tokens, double queue_ms, double prefill_ms,
                         double decode_ms);
    // A request refused before it ran (invalid, busy, shutting down).
    void record_rejected();

    // {"requests": {"eos": n, ...}, "prompt_tokens": n, "generated_tokens": n,
    //  "time_to_first_token_seconds": histogram, "time_per_output_token_seconds": histogram}
    nlohmann::json to_json() const;

private:
    mutable std::mutex mutex_;
    std::array<std::uint64_t, 6> outcomes_{};
    std::uint64_t prompt_tokens_ = 0;
    std::uint64_t generated_tokens_ = 0;
    LatencyHistogram time_to_first_token_;
    LatencyHistogram time_per_output_token_;
};

}  // namespace llmq

// ServingMetrics: outcomes, token counts and the two latency histograms of the `metrics` command.
#include <doctest/doctest.h>

#include "llmq/runtime/serving_metrics.hpp"

using llmq::RequestOutcome;
using llmq::ServingMetrics;

TEST_CASE("serving metrics count outcomes and fill cumulative histograms") {
    ServingMetrics m;
    m.record_finished(RequestOutcome::length, 10, 5, 1.0, 4.0, 40.0);   // TTFT 5 ms, TPOT 10 ms
    m.record_finished(RequestOutcome::eos, 3, 1, 0.0, 300.0, 0.0);      // TTFT 300 ms, no TPOT
    m.record_finished(RequestOutcome::cancelled, 7, 0, 2.0, 0.0, 0.0);  // no token: neither
    m.record_rejected();
    const auto j = m.to_json();
    CHECK(j["requests"]["length"] == 1);
    CHECK(j["requests"]["eos"] == 1);
    CHECK(j["requests"]["cancelled"] == 1);
    CHECK(j["requests"]["rejected"] == 1);
    CHECK(j["requests"]["error"] == 0);
    CHECK(j["prompt_tokens"] == 20);
    CHECK(j["generated_tokens"] == 6);

    const auto& ttft = j["time_to_first_token_seconds"];
    CHECK(ttft["count"] == 2);
    CHECK(ttft["sum"].get<double>() == doctest::Approx(0.305));
    // Cumulative: 5 ms falls in le=0.005, 300 ms first in le=0.5; the last bucket holds both.
    CHECK(ttft["buckets"][0][0].get<double>() == doctest::Approx(0.005));
    CHECK(ttft["buckets"][0][1] == 1);
    for (const auto& b : ttft["buckets"]) {
        const double le = b[0].get<double>();
        CHECK(b[1].get<int>() == (le < 0.005 ? 0 : le < 0.3 ? 1 : 2));
    }
    const auto& tpot = j["time_per_output_token_seconds"];
    CHECK(tpot["count"] == 1);
    CHECK(tpot["sum"].get<double>() == doctest::Approx(0.010));
}

TEST_CASE("a latency beyond the last bound counts only in +Inf (the total)") {
    ServingMetrics m;
    m.record_finished(RequestOutcome::length, 1, 2, 0.0, 1e6, 1.0);  // 1000 s to the first token
    const auto j = m.to_json();
    const auto& ttft = j["time_to_first_token_seconds"];
    CHECK(ttft["count"] == 1);
    CHECK(ttft["buckets"].back()[1] == 0);
}

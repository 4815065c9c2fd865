// pipeline_micro_batches: more micro-batches than stages for a prefill, one for a small decode
// step, never more than the sequences.
#include <doctest/doctest.h>

#include "llmq/runtime/pipeline_schedule.hpp"

using llmq::pipeline_micro_batches;

TEST_CASE("one stage or one sequence: one micro-batch") {
    CHECK(pipeline_micro_batches(1, 32, 512) == 1);
    CHECK(pipeline_micro_batches(4, 1, 512) == 1);
}

TEST_CASE("a prefill of 8 sequences over 2 stages is cut into more micro-batches than stages") {
    // (M + 1) x (8 + 512 / M) is least at M = 8: the bubble is 1/9 of the step instead of 1/3.
    CHECK(pipeline_micro_batches(2, 8, 8 * 64) == 8);
    CHECK(pipeline_micro_batches(2, 8, 8 * 16) > 2);
    CHECK(pipeline_micro_batches(4, 64, 64 * 64) > 4);
}

TEST_CASE("a decode step of 8 sequences is not cut: each micro-batch would read the weights again") {
    CHECK(pipeline_micro_batches(2, 8, 8) == 1);
    CHECK(pipeline_micro_batches(2, 32, 32) == 2);
}

TEST_CASE("never more micro-batches than sequences") {
    CHECK(pipeline_micro_batches(2, 3, 3 * 512) == 3);
    CHECK(pipeline_micro_batches(8, 2, 4096) == 2);
}

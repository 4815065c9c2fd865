// The daemon's line per finished request: every field the issue asks for, the time to first
// token as queue + prefill, the reason of a failed request, none for a request with no tokens.
#include <doctest/doctest.h>

#include "llmq/runtime/request_log.hpp"

using llmq::FinishInfo;
using llmq::FinishReason;

TEST_CASE("a finished request's line names ids, pid, tokens, first token, rate and finish") {
    FinishInfo info;
    info.reason = FinishReason::length;
    info.prompt_tokens = {1, 2, 3};
    info.tokens = {4, 5};
    info.timings.queue_ms = 2.5;
    info.timings.prefill_ms = 10.0;
    info.timings.decode_tokens_per_s = 51.3;
    CHECK(llmq::request_finished_line({7, 3, 4242}, info) ==
          "request 7 of client 3 (pid 4242): 3 prompt + 2 generated tokens, first token 12.5 ms, "
          "51.3 tok/s, finish length");
}

TEST_CASE("a stop string, an error and a request that never produced a token") {
    FinishInfo stopped;
    stopped.reason = FinishReason::stop;
    stopped.tokens = {9};
    stopped.stop_string = true;
    CHECK(llmq::request_finished_line({1, 1, 10}, stopped).ends_with("finish stop (stop string)"));

    FinishInfo failed;
    failed.reason = FinishReason::error;
    failed.error = "kv cache exhausted";
    failed.timings.queue_ms = 40;  // queued, then failed before a token: no time to first token
    const std::string line = llmq::request_finished_line({2, 1, 10}, failed);
    CHECK(line.find("0 generated tokens, first token 0.0 ms") != std::string::npos);
    CHECK(line.ends_with("finish error: kv cache exhausted"));
}

// The daemon's line for each finished request, written at info level when the request ends,
// whatever ended it:
//
//   request 7 of client 3 (pid 4242): 12 prompt + 48 generated tokens, first token 35.2 ms,
//   51.3 tok/s, finish length
//
// (one line). "first token" is the time from submission to the first generated token (queue +
// prefill); tok/s is the decode rate after the first token (0 with fewer than two tokens). A
// request that failed or was cut off adds its reason: "finish error: ..." / "finish cancelled:
// ...".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "llmq/runtime/request.hpp"

namespace llmq {

struct RequestLogIds {
    uint64_t request = 0;  // the client's id of the request
    uint64_t client = 0;   // the daemon's id of the connection
    pid_t pid = 0;         // the client process, from its socket credentials
};

std::string request_finished_line(const RequestLogIds& ids, const FinishInfo& info);

}  // namespace llmq

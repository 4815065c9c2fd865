#include "llmq/runtime/request_log.hpp"

#include <cstdio>

namespace llmq {

std::string request_finished_line(const RequestLogIds& ids, const FinishInfo& info) {
    const RequestTimings& t = info.timings;
    char text[256];
    std::snprintf(text, sizeof text,
                  "request %llu of client %llu (pid %lld): %zu prompt + %zu generated tokens, "
                  "first token %.1f ms, %.1f tok/s, finish %s",
                  static_cast<unsigned long long>(ids.request), static_cast<unsigned long long>(ids.client),
                  static_cast<long long>(ids.pid), info.prompt_tokens.size(), info.tokens.size(),
                  info.tokens.empty() ? 0.0 : t.queue_ms + t.prefill_ms, t.decode_tokens_per_s,
                  finish_reason_name(info.reason));
    std::string line = text;
    if (info.stop_string) line += " (stop string)";
    // The reason stays in the daemon's log only; it never names another client's data.
    if (!info.error.empty()) line += ": " + info.error;
    return line;
}

}  // namespace llmq

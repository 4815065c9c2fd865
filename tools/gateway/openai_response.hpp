// The OpenAI response objects the gateway writes: whole completions, streamed chunks, usage,
// and the finish reasons of llmqd's final events in OpenAI's words.
//
// Token pieces from llmqd are bytes and may split a UTF-8 sequence between two tokens; JSON
// strings must be valid UTF-8, so Utf8Joiner holds back an unfinished sequence until the next
// piece completes it, and replaces what never completes with U+FFFD.
//
// Pure functions and single-owner objects; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "llmq/ipc/event.hpp"

namespace llmq::gateway {

class Utf8Joiner {
public:
    // The text that is complete after `piece`: everything but an unfinished sequence at its
    // end (kept for the next call). Invalid bytes become U+FFFD.
    std::string push(std::string_view piece);
    // What is left, with an unfinished sequence replaced by U+FFFD.
    std::string finish();

private:
    std::string pending_;
};

// `text` with every invalid UTF-8 byte replaced by U+FFFD.
std::string valid_utf8(std::string_view text);

// "stop" for eos and stop strings, "length" for length; "stop" otherwise.
const char* openai_finish_reason(ipc::FinishReason reason);

// What the response builders need to know about one request.
struct ResponseContext {
    std::string id;     // "cmpl-..." / "chatcmpl-..."
    int64_t created = 0; // Unix seconds
    std::string model;
    bool chat = false;
    bool logprobs = false;
};

struct Usage {
    uint32_t prompt_tokens = 0;
    uint32_t completion_tokens = 0;
    nlohmann::json to_json() const;
};

// One token's log-probability entry: chat {"token", "logprob", "bytes", "top_logprobs": []};
// completions use the parallel arrays of CompletionLogprobs.
nlohmann::json chat_logprob_entry(std::string_view piece, float logprob);

struct CompletionLogprobs {
    nlohmann::json tokens = nlohmann::json::array();
    nlohmann::json token_logprobs = nlohmann::json::array();
    nlohmann::json top_logprobs = nlohmann::json::array();
    nlohmann::json text_offset = nlohmann::json::array();
    size_t offset = 0;
    void add(std::string_view piece, float logprob);
    nlohmann::json to_json() const;
};

// A streamed chunk: chat: {"object": "chat.completion.chunk", "choices": [{"index": 0,
// "delta": {...}, "logprobs", "finish_reason"}]}; completions: {"object": "text_completion",
// "choices": [{"index": 0, "text", "logprobs", "finish_reason"}]}. `finish_reason` "" = null;
// `logprobs` null when absent.
nlohmann::json stream_chunk(const ResponseContext& c, const std::string& text, bool first,
                            const std::string& finish_reason, nlohmann::json logprobs);
// The last chunk with stream_options.include_usage: empty choices and the usage.
nlohmann::json usage_chunk(const ResponseContext& c, const Usage& usage);
// The whole (not streamed) response.
nlohmann::json whole_response(const ResponseContext& c, const std::string& text,
                              const std::string& finish_reason, const Usage& usage, nlohmann::json logprobs);

}  // namespace llmq::gateway

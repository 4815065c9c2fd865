// The OpenAI request bodies the gateway accepts, checked field by field.
//
// parse_completion_request (/v1/completions) and parse_chat_request (/v1/chat/completions)
// turn a JSON body into a GenerateRequest plus what the response needs (stream, usage,
// logprobs), or into an ApiError that names the field (`param`) and says what is wrong, with
// the HTTP status to answer. Every number is checked for its type and range before it is used,
// so "max_tokens": 1e300 or "temperature": "hot" is a 400, never a wrapped or clamped value.
//
// Supported: model, prompt (a string, one string in an array, or token ids) / messages, stream,
// stream_options.include_usage, max_tokens (chat also max_completion_tokens), temperature,
// top_p, seed, stop, presence_penalty, frequency_penalty, logprobs (completions: 0; chat: true
// with top_logprobs 0, since llmqd reports the sampled token's log-probability only), n = 1.
// Chat content may be an array of {"type": "text"} and {"type": "image_url"} parts; an image's
// URL must be a base64 PNG or JPEG data URL (image_data_url.hpp), decoded here (a 400 naming
// messages[i].content[j].image_url.url otherwise); the daemon checks the image itself.
// Other OpenAI fields are ignored, except those whose non-default values would change the
// answer (best_of, echo, suffix, logit_bias, tools, response_format other than text), which
// are refused.
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "llmq/ipc/generate_request.hpp"

namespace llmq::gateway {

struct ApiError {
    int status = 400;
    std::string type = "invalid_request_error";  // OpenAI's error types
    std::string message;
    std::string param;  // the field; "" = null
    std::string code;   // "" = null

    // {"error": {"message", "type", "param", "code"}}
    nlohmann::json to_json() const;
};

struct ApiRequest {
    ipc::GenerateRequest generate;  // for chat, the prompt tokens come from chat_template
    // chat: [{"role", "content"}] for llmqd's chat_template command, content a string, or for a
    // message with images an array of {"type": "text", "text"} and {"type": "image"} parts
    // (generate.images holds the images' bytes in that order).
    nlohmann::json messages;
    std::string model;
    bool chat = false;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    bool logprobs = false;
};

struct RequestLimits {
    uint32_t max_tokens = 1 << 20;
};

using ParsedRequest = std::variant<ApiRequest, ApiError>;

ParsedRequest parse_completion_request(const nlohmann::json& body, const RequestLimits& limits);
ParsedRequest parse_chat_request(const nlohmann::json& body, const RequestLimits& limits);

// A chat request's images against what llmqd's status says it takes (its "model"."vision":
// null, or max_images and max_image_bytes): a 400 saying which limit, or nothing.
std::optional<ApiError> image_refusal(const nlohmann::json& status, const ipc::GenerateRequest& request);

// The body as JSON, or a 400 naming the byte where parsing stopped.
std::variant<nlohmann::json, ApiError> parse_json_body(const std::string& body);

}  // namespace llmq::gateway

#include "openai_request.hpp"

#include <cmath>
#include <limits>

#include "image_data_url.hpp"

namespace llmq::gateway {

using json = nlohmann::json;

nlohmann::json ApiError::to_json() const {
    json e{{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
    if (!param.empty()) e["param"] = param;
    if (!code.empty()) e["code"] = code;
    return json{{"error", e}};
}

namespace {

ApiError bad(const std::string& param, const std::string& message) {
    return ApiError{400, "invalid_request_error", param + ": " + message, param, ""};
}

bool present(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

// A number in [low, high] (integers accepted); false with *error set otherwise.
bool number_field(const json& body, const char* key, double low, double high, float* out,
                  std::optional<ApiError>* error) {
    if (!present(body, key)) return true;
    const json& v = body[key];
    if (!v.is_number()) {
        *error = bad(key, "must be a number, got " + std::string(v.type_name()));
        return false;
    }
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < low || d > high) {
        *error = bad(key, "must be between " + json(low).dump() + " and " + json(high).dump() + ", got " + v.dump());
        return false;
    }
    *out = static_cast<float>(d);
    return true;
}

// An integer in [low, high]; a float (even 3.0) or a value beyond int64 is refused.
bool integer_field(const json& body, const char* key, int64_t low, int64_t high, int64_t* out,
                   std::optional<ApiError>* error) {
    if (!present(body, key)) return true;
    const json& v = body[key];
    bool in_range = false;
    int64_t value = 0;
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        in_range = u <= static_cast<uint64_t>(high);
        value = in_range ? static_cast<int64_t>(u) : 0;
    } else if (v.is_number_integer()) {
        value = v.get<int64_t>();
        in_range = value >= low && value <= high;
    } else {
        *error = bad(key, "must be an integer, got " + (v.is_number() ? v.dump() : std::string(v.type_name())));
        return false;
    }
    if (!in_range || value < low) {
        *error = bad(key, "must be an integer between " + std::to_string(low) + " and " + std::to_string(high) +
                              ", got " + v.dump());
        return false;
    }
    *out = value;
    return true;
}

bool bool_field(const json& body, const char* key, bool* out, std::optional<ApiError>* error) {
    if (!present(body, key)) return true;
    if (!body[key].is_boolean()) {
        *error = bad(key, "must be true or false, got " + std::string(body[key].type_name()));
        return false;
    }
    *out = body[key].get<bool>();
    return true;
}

// Fields both endpoints share. Returns the error, if any.
std::optional<ApiError> common_fields(const json& body, const RequestLimits& limits, ApiRequest* r,
                                      const char* max_tokens_key) {
    std::optional<ApiError> error;
    if (!body.is_object()) return bad("body", "must be a JSON object, got " + std::string(body.type_name()));
    if (!body.contains("model") || !body["model"].is_string())
        return bad("model", "must be a string naming the model (GET /v1/models lists it)");
    r->model = body["model"].get<std::string>();

    auto& g = r->generate;
    // OpenAI's sampling defaults: temperature 1, top_p 1, nothing else filtered.
    g.sampling.temperature = 1.0f;
    g.sampling.top_p = 1.0f;
    g.sampling.top_k = 0;
    g.sampling.min_p = 0.0f;
    g.sampling.repetition_penalty = 1.0f;
    g.add_bos = true;

    int64_t n = 1;
    if (!integer_field(body, "n", 1, 128, &n, &error)) return error;
    if (n != 1) return bad("n", "only n = 1 is supported, got " + std::to_string(n));
    int64_t max_tokens = 0;
    if (!integer_field(body, max_tokens_key, 1, limits.max_tokens, &max_tokens, &error)) return error;
    g.max_tokens = static_cast<int32_t>(max_tokens);
    if (!number_field(body, "temperature", 0.0, 2.0, &g.sampling.temperature, &error)) return error;
    if (!number_field(body, "top_p", 0.0, 1.0, &g.sampling.top_p, &error)) return error;
    if (g.sampling.top_p <= 0.0f) return bad("top_p", "must be greater than 0");
    if (!number_field(body, "presence_penalty", -2.0, 2.0, &g.sampling.presence_penalty, &error)) return error;
    if (!number_field(body, "frequency_penalty", -2.0, 2.0, &g.sampling.frequency_penalty, &error)) return error;
    if (present(body, "seed")) {
        const json& s = body["seed"];
        if (s.is_number_unsigned()) {
            g.sampling.seed = s.get<uint64_t>();
        } else if (s.is_number_integer()) {
            g.sampling.seed = static_cast<uint64_t>(s.get<int64_t>());
        } else {
            return bad("seed", "must be an integer, got " + (s.is_number() ? s.dump() : std::string(s.type_name())));
        }
        g.sampling.seed_set = true;
    }
    if (present(body, "stop")) {
        const json& s = body["stop"];
        std::vector<std::string> stops;
        if (s.is_string()) {
            stops.push_back(s.get<std::string>());
        } else if (s.is_array()) {
            if (s.size() > 4) return bad("stop", "at most 4 stop sequences, got " + std::to_string(s.size()));
            for (const auto& item : s) {
                if (!item.is_string()) return bad("stop", "must be a string or an array of strings");
                stops.push_back(item.get<std::string>());
            }
        } else {
            return bad("stop", "must be a string or an array of strings, got " + std::string(s.type_name()));
        }
        for (const auto& stop : stops) {
            if (stop.empty()) return bad("stop", "a stop sequence must not be empty");
            if (stop.size() > 256) return bad("stop", "a stop sequence may hold at most 256 bytes");
        }
        g.stop = std::move(stops);
    }
    // vLLM's extension: keep generating past the end-of-sequence token (until max_tokens or a stop).
    if (!bool_field(body, "ignore_eos", &g.ignore_eos, &error)) return error;
    if (!bool_field(body, "stream", &r->stream, &error)) return error;
    if (present(body, "stream_options")) {
        const json& o = body["stream_options"];
        if (!o.is_object()) return bad("stream_options", "must be an object");
        if (!r->stream) return bad("stream_options", "is only allowed with \"stream\": true");
        if (!bool_field(o, "include_usage", &r->include_usage, &error)) {
            error->param = "stream_options.include_usage";
            return error;
        }
    }
    if (present(body, "logit_bias") && !(body["logit_bias"].is_object() && body["logit_bias"].empty()))
        return bad("logit_bias", "is not supported");
    if (present(body, "tools") && !(body["tools"].is_array() && body["tools"].empty()))
        return bad("tools", "tool calls are not supported");
    if (present(body, "response_format")) {
        const json& f = body["response_format"];
        if (!f.is_object() || f.value("type", "") != "text")
            return bad("response_format", "only {\"type\": \"text\"} is supported");
    }
    return std::nullopt;
}

// A message's content for llmqd's chat_template command: a string, or an array of text and
// image_url parts; the latter become {"type": "image"} parts, their decoded bytes appended to
// *images in order. Returns the error, if any.
std::optional<ApiError> message_content(const json& content, const std::string& where, json* out,
                                        std::vector<std::vector<uint8_t>>* images) {
    if (content.is_string()) {
        *out = content;
        return std::nullopt;
    }
    if (content.is_null()) {
        *out = "";
        return std::nullopt;
    }
    if (!content.is_array()) return bad(where, "must be a string or an array of content parts");
    json parts = json::array();
    std::string text;  // text parts run together, as one string when no image comes
    bool any_image = false;
    for (size_t j = 0; j < content.size(); ++j) {
        const json& part = content[j];
        const std::string at = where + "[" + std::to_string(j) + "]";
        const std::string type = part.is_object() && part.contains("type") && part["type"].is_string()
                                     ? part["type"].get<std::string>()
                                     : "";
        if (type == "text") {
            if (!part.contains("text") || !part["text"].is_string()) return bad(at + ".text", "must be a string");
            parts.push_back({{"type", "text"}, {"text", part["text"]}});
            text += part["text"].get<std::string>();
        } else if (type == "image_url") {
            const json* url = nullptr;
            if (part.contains("image_url") && part["image_url"].is_object() && part["image_url"].contains("url"))
                url = &part["image_url"]["url"];
            else if (part.contains("image_url") && part["image_url"].is_string())
                url = &part["image_url"];
            if (!url || !url->is_string())
                return bad(at + ".image_url.url", "must be a string (a data:image/png;base64,... URL)");
            auto bytes = decode_image_data_url(url->get_ref<const std::string&>());
            if (auto* error = std::get_if<std::string>(&bytes)) return bad(at + ".image_url.url", *error);
            images->push_back(std::move(std::get<std::vector<uint8_t>>(bytes)));
            parts.push_back({{"type", "image"}});
            any_image = true;
        } else {
            return bad(at + ".type", "must be \"text\" or \"image_url\", got " +
                                         (type.empty() ? std::string("none") : "\"" + type + "\""));
        }
    }
    if (any_image) *out = std::move(parts);
    else *out = text;
    return std::nullopt;
}

}  // namespace

ParsedRequest parse_completion_request(const json& body, const RequestLimits& limits) {
    ApiRequest r;
    if (auto error = common_fields(body, limits, &r, "max_tokens")) return *error;
    if (!present(body, "max_tokens")) r.generate.max_tokens = 16;  // OpenAI's default for completions
    if (!body.contains("prompt")) return bad("prompt", "is required");
    const json& p = body["prompt"];
    if (p.is_string()) {
        r.generate.prompt_text = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
        r.generate.prompt_text = p[0].get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_number()) {
        for (const auto& t : p) {
            if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())
                return bad("prompt", "token ids must be non-negative integers");
            r.generate.prompt_tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
        }
        r.generate.prompt_is_tokens = true;
    } else if (p.is_array() && p.size() > 1) {
        return bad("prompt", "only one prompt per request is supported, got " + std::to_string(p.size()));
    } else {
        return bad("prompt", "must be a string, an array of one string, or an array of token ids");
    }
    std::optional<ApiError> error;
    int64_t logprobs = -1;
    if (!integer_field(body, "logprobs", 0, 5, &logprobs, &error)) return *error;
    if (logprobs > 0)
        return bad("logprobs", "only 0 is supported (llmqd reports the sampled token's log-probability, not "
                               "the most likely alternatives)");
    r.logprobs = logprobs == 0;
    int64_t best_of = 1;
    if (!integer_field(body, "best_of", 1, 128, &best_of, &error)) return *error;
    if (best_of != 1) return bad("best_of", "only best_of = 1 is supported");
    bool echo = false;
    if (!bool_field(body, "echo", &echo, &error)) return *error;
    if (echo) return bad("echo", "echo is not supported");
    if (present(body, "suffix")) return bad("suffix", "is not supported");
    r.generate.logprobs = r.logprobs;
    return r;
}

ParsedRequest parse_chat_request(const json& body, const RequestLimits& limits) {
    ApiRequest r;
    r.chat = true;
    const char* max_key = body.is_object() && present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (auto error = common_fields(body, limits, &r, max_key)) return *error;
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
        return bad("messages", "must be a non-empty array of {\"role\", \"content\"}");
    r.messages = json::array();
    const json& list = body["messages"];
    for (size_t i = 0; i < list.size(); ++i) {
        const std::string where = "messages[" + std::to_string(i) + "]";
        const json& m = list[i];
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
            return bad(where + ".role", "must be a string");
        std::string role = m["role"].get<std::string>();
        if (role == "developer") role = "system";
        if (role != "system" && role != "user" && role != "assistant")
            return bad(where + ".role", "must be \"system\", \"user\" or \"assistant\", got \"" + role + "\"");
        if (!m.contains("content")) return bad(where + ".content", "is required");
        json content;
        if (auto error = message_content(m["content"], where + ".content", &content, &r.generate.images)) return *error;
        if (content.is_array() && role != "user")
            return bad(where + ".content", "images are taken in user messages only");
        r.messages.push_back({{"role", role}, {"content", std::move(content)}});
    }
    std::optional<ApiError> error;
    if (!bool_field(body, "logprobs", &r.logprobs, &error)) return *error;
    int64_t top = 0;
    if (!integer_field(body, "top_logprobs", 0, 20, &top, &error)) return *error;
    if (top > 0)
        return bad("top_logprobs", "only 0 is supported (llmqd reports the sampled token's log-probability, not "
                                   "the most likely alternatives)");
    r.generate.logprobs = r.logprobs;
    r.generate.prompt_is_tokens = true;  // filled from chat_template's tokens
    r.generate.add_bos = false;
    return r;
}

std::optional<ApiError> image_refusal(const json& status, const ipc::GenerateRequest& request) {
    if (request.images.empty()) return std::nullopt;
    const json* vision = nullptr;
    if (status.is_object() && status.contains("model") && status["model"].is_object() &&
        status["model"].contains("vision"))
        vision = &status["model"]["vision"];
    const std::string name = status.is_object() && status.contains("model") && status["model"].is_object()
                                 ? status["model"].value("name", "")
                                 : "";
    if (!vision || !vision->is_object())
        return bad("messages", "the model '" + name + "' takes no images: llmqd serves it without a vision "
                               "projector ([model] vision = MMPROJ)");
    const uint64_t max_images = vision->value("max_images", uint64_t{0});
    const uint64_t max_bytes = vision->value("max_image_bytes", uint64_t{0});
    if (request.images.size() > max_images)
        return bad("messages", std::to_string(request.images.size()) + " images; llmqd takes at most " +
                                   std::to_string(max_images) + " a request ([ipc] max_images)");
    uint64_t total = 0;
    for (const auto& image : request.images) total += image.size();
    if (total > max_bytes)
        return bad("messages", "the images hold " + std::to_string(total) + " bytes; llmqd takes at most " +
                                   std::to_string(max_bytes) + " a request ([ipc] max_image_bytes)");
    return std::nullopt;
}

std::variant<nlohmann::json, ApiError> parse_json_body(const std::string& body) {
    // No request needs deep nesting; refusing it early keeps every later walk shallow.
    constexpr int kMaxDepth = 32;
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxDepth)
                return ApiError{400, "invalid_request_error",
                                "the request body nests deeper than " + std::to_string(kMaxDepth) +
                                    " levels (at byte " + std::to_string(i) + ")",
                                "", ""};
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    try {
        return json::parse(body);
    } catch (const json::parse_error& e) {
        return ApiError{400, "invalid_request_error",
                        "the request body is not valid JSON (at byte " + std::to_string(e.byte) + ")", "", ""};
    }
}

}  // namespace llmq::gateway

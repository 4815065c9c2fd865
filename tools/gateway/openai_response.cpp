#include "openai_response.hpp"

namespace llmq::gateway {

using json = nlohmann::json;

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the valid UTF-8 sequence at text[i] (1..4), 0 if invalid, -1 if it is a valid
// beginning cut short by the end of `text`.
int sequence_length(std::string_view text, size_t i) {
    const auto b = static_cast<unsigned char>(text[i]);
    int need;
    unsigned char low = 0x80, high = 0xBF;  // the second byte's range
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) low = 0xA0;
        if (b == 0xED) high = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) low = 0x90;
        if (b == 0xF4) high = 0x8F;
    } else {
        return 0;
    }
    for (int k = 1; k < need; ++k) {
        if (i + k >= text.size()) return -1;
        const auto c = static_cast<unsigned char>(text[i + k]);
        if (k == 1 ? (c < low || c > high) : (c < 0x80 || c > 0xBF)) return 0;
    }
    return need;
}

// Appends the valid part of text to out; returns where an unfinished tail starts (text.size()
// when there is none). With `final`, an unfinished tail is replaced too.
size_t append_valid(std::string_view text, std::string& out, bool final) {
    size_t i = 0;
    while (i < text.size()) {
        const int n = sequence_length(text, i);
        if (n > 0) {
            out.append(text.substr(i, n));
            i += n;
        } else if (n < 0 && !final) {
            return i;
        } else {
            out.append(kReplacement);
            ++i;
            if (n < 0) {  // a cut-short sequence: one replacement for all of it
                while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
            }
        }
    }
    return text.size();
}

json base_object(const ResponseContext& c, const char* object) {
    return json{{"id", c.id}, {"object", object}, {"created", c.created}, {"model", c.model}};
}

}  // namespace

std::string Utf8Joiner::push(std::string_view piece) {
    pending_.append(piece);
    std::string out;
    const size_t tail = append_valid(pending_, out, false);
    pending_.erase(0, tail);
    return out;
}

std::string Utf8Joiner::finish() {
    std::string out;
    append_valid(pending_, out, true);
    pending_.clear();
    return out;
}

std::string valid_utf8(std::string_view text) {
    std::string out;
    append_valid(text, out, true);
    return out;
}

const char* openai_finish_reason(ipc::FinishReason reason) {
    return reason == ipc::FinishReason::length ? "length" : "stop";
}

json Usage::to_json() const {
    return json{{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}};
}

json chat_logprob_entry(std::string_view piece, float logprob) {
    json bytes = json::array();
    for (unsigned char b : piece) bytes.push_back(b);
    return json{{"token", valid_utf8(piece)}, {"logprob", logprob}, {"bytes", bytes}, {"top_logprobs", json::array()}};
}

void CompletionLogprobs::add(std::string_view piece, float logprob) {
    tokens.push_back(valid_utf8(piece));
    token_logprobs.push_back(logprob);
    top_logprobs.push_back(nullptr);
    text_offset.push_back(offset);
    offset += piece.size();
}

json CompletionLogprobs::to_json() const {
    return json{{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs},
                {"text_offset", text_offset}};
}

json stream_chunk(const ResponseContext& c, const std::string& text, bool first, const std::string& finish_reason,
                  json logprobs) {
    json choice{{"index", 0}, {"logprobs", std::move(logprobs)}};
    choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
    if (c.chat) {
        json delta = json::object();
        if (first) delta["role"] = "assistant";
        if (!text.empty() || (first && finish_reason.empty())) delta["content"] = text;
        choice["delta"] = delta;
    } else {
        choice["text"] = text;
    }
    json chunk = base_object(c, c.chat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = json::array({choice});
    return chunk;
}

json usage_chunk(const ResponseContext& c, const Usage& usage) {
    json chunk = base_object(c, c.chat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = json::array();
    chunk["usage"] = usage.to_json();
    return chunk;
}

json whole_response(const ResponseContext& c, const std::string& text, const std::string& finish_reason,
                    const Usage& usage, json logprobs) {
    json choice{{"index", 0}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish_reason}};
    if (c.chat) choice["message"] = json{{"role", "assistant"}, {"content", text}};
    else choice["text"] = text;
    json out = base_object(c, c.chat ? "chat.completion" : "text_completion");
    out["choices"] = json::array({choice});
    out["usage"] = usage.to_json();
    return out;
}

}  // namespace llmq::gateway

#include "llmq/ipc/event.hpp"

namespace llmq::ipc {

Event Event::token(std::uint64_t request_id, std::int32_t token_id, std::string_view piece) {
    Event e;
    e.request_id = request_id;
    e.kind = EventKind::token;
    e.token_id = token_id;
    e.text = piece;
    return e;
}

Event Event::token(std::uint64_t request_id, std::int32_t token_id, std::string_view piece, float logprob) {
    Event e = token(request_id, token_id, piece);
    e.logprob = logprob;
    e.has_logprob = true;
    return e;
}

Event Event::final_event(std::uint64_t request_id, FinishReason reason, std::uint32_t prompt_tokens,
                         std::uint32_t generated_tokens, std::uint64_t queued_us, std::uint64_t prefill_us,
                         std::uint64_t decode_us) {
    Event e;
    e.request_id = request_id;
    e.kind = EventKind::final;
    e.code = static_cast<std::uint32_t>(reason);
    e.prompt_tokens = prompt_tokens;
    e.generated_tokens = generated_tokens;
    e.queued_us = queued_us;
    e.prefill_us = prefill_us;
    e.decode_us = decode_us;
    return e;
}

Event Event::error(std::uint64_t request_id, EventError code, std::string_view message) {
    Event e;
    e.request_id = request_id;
    e.kind = EventKind::error;
    e.code = static_cast<std::uint32_t>(code);
    if (message.size() > kMaxEventMessageBytes) {
        e.text = std::string(message.substr(0, kMaxEventMessageBytes - 3)) + "...";
    } else {
        e.text = message;
    }
    return e;
}

Event Event::pong(std::uint64_t request_id) {
    Event e;
    e.request_id = request_id;
    e.kind = EventKind::pong;
    return e;
}

std::uint64_t event_slot_count(const Event& event) {
    if (event.text.empty()) return 1;
    return (event.text.size() + kEventTextBytes - 1) / kEventTextBytes;
}

const char* event_kind_name(EventKind kind) {
    switch (kind) {
        case EventKind::token: return "token";
        case EventKind::final: return "final";
        case EventKind::error: return "error";
        case EventKind::pong: return "pong";
    }
    return "unknown";
}

const char* finish_reason_name(FinishReason reason) {
    switch (reason) {
        case FinishReason::eos: return "eos";
        case FinishReason::length: return "length";
        case FinishReason::stop_string: return "stop_string";
        case FinishReason::cancelled: return "cancelled";
    }
    return "unknown";
}

const char* event_error_name(EventError code) {
    switch (code) {
        case EventError::invalid_request: return "invalid_request";
        case EventError::busy: return "busy";
        case EventError::shutting_down: return "shutting_down";
        case EventError::stalled: return "stalled";
        case EventError::internal: return "internal";
    }
    return "unknown";
}

}  // namespace llmq::ipc

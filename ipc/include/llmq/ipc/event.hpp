// Event: one thing the daemon tells a client about a request, as plain owned values.
//
// The daemon builds them (the constructors below) and pushes them (ServerRegion::push_event);
// the client receives them reassembled from the response ring (Client::next_event).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "llmq/ipc/region_layout.hpp"

namespace llmq::ipc {

struct Event {
    std::uint64_t request_id = 0;
    EventKind kind = EventKind::token;
    std::int32_t token_id = -1;       // token
    float logprob = 0.0f;             // token, when has_logprob
    bool has_logprob = false;
    std::uint32_t code = 0;           // final: FinishReason; error: EventError
    std::string text;                 // token: piece (bytes, may split UTF-8); error: message
    std::uint32_t prompt_tokens = 0;  // final
    std::uint32_t generated_tokens = 0;
    std::uint64_t queued_us = 0;
    std::uint64_t prefill_us = 0;
    std::uint64_t decode_us = 0;

    FinishReason finish_reason() const { return static_cast<FinishReason>(code); }
    EventError error_code() const { return static_cast<EventError>(code); }

    static Event token(std::uint64_t request_id, std::int32_t token_id, std::string_view piece);
    static Event token(std::uint64_t request_id, std::int32_t token_id, std::string_view piece,
                       float logprob);
    static Event final_event(std::uint64_t request_id, FinishReason reason,
                             std::uint32_t prompt_tokens, std::uint32_t generated_tokens,
                             std::uint64_t queued_us, std::uint64_t prefill_us,
                             std::uint64_t decode_us);
    static Event error(std::uint64_t request_id, EventError code, std::string_view message);
    static Event pong(std::uint64_t request_id);
};

// Longest error message an event carries; longer messages are cut (with "...").
inline constexpr std::size_t kMaxEventMessageBytes = 1024;

// Slots an event takes on the response ring: ceil(text bytes / kEventTextBytes), at least 1.
std::uint64_t event_slot_count(const Event& event);

const char* event_kind_name(EventKind kind);
const char* finish_reason_name(FinishReason reason);
const char* event_error_name(EventError code);

}  // namespace llmq::ipc

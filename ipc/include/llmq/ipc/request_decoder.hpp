// The request decoder: turns one descriptor copied off a client's request ring, and its payload
// in the client's arena, into an owned, validated DecodedRequest, or a RequestDefect that names
// the wrong field.
//
// The arena is hostile shared memory: the client may rewrite it while it is read. The decoder
// copies the payload out once (copy_from_shared) after checking the descriptor's
// (offset, length) with checked_range against the arena size the caller owns, then validates the
// copy only: enum values, UTF-8 of prompt and stop strings, token ids against the vocabulary,
// counts and sampling values (NaN, infinities, negatives, absurd magnitudes) against
// DecodeLimits. Nothing is read twice and no input is guarded by an assert.
//
// Thread: pure function of its arguments; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "llmq/ipc/generate_request.hpp"
#include "llmq/ipc/region_layout.hpp"

namespace llmq::ipc {

// Limits from the daemon's configuration and its loaded model.
struct DecodeLimits {
    std::uint32_t vocab_size = 0;             // token ids must be < this; 0 = no model yet:
                                              // token prompts are refused
    std::uint32_t max_prompt_tokens = 1u << 20;  // token prompts longer are refused
    std::uint64_t max_prompt_bytes = 4u << 20;   // text prompts longer are refused
    std::int32_t max_new_tokens = 1 << 20;       // max_tokens above this is refused
    std::uint32_t max_stop_strings = 8;
    std::uint32_t max_stop_bytes = 256;          // per stop string
    std::uint32_t max_images = 0;                // images per request; 0: images are refused
    std::uint64_t max_image_bytes = 0;           // all images of a request together
    std::uint64_t max_payload_bytes = 16u << 20;  // checked before anything is copied
    std::string max_payload_why;                  // appended to that refusal: where the limit comes from
};

struct DecodedRequest {
    std::uint64_t request_id = 0;  // for cancel: the request to cancel
    RequestKind kind = RequestKind::ping;
    GenerateRequest generate;      // meaningful when kind == generate
};

// Why a request was refused. `message` is complete and safe to send back to that client (it
// names the field and the value it saw, never addresses or other clients' data);
// `field` is the bare field name ("sampling.temperature") for logs and tests.
struct RequestDefect {
    std::uint64_t request_id = 0;  // as the copy said; may be 0 when that was the defect
    std::string field;
    std::string message;
};

using PolledRequest = std::variant<DecodedRequest, RequestDefect>;

// Where the client's arena is, in the caller's (daemon's) own terms.
struct ArenaView {
    std::byte* base = nullptr;  // start of the arena in the daemon's mapping
    std::uint64_t size = 0;     // from the daemon's own RegionLayout, never from the region
};

// Decodes one request. `descriptor` must already be a private copy.
PolledRequest decode_request(const RequestDescriptor& descriptor, ArenaView arena,
                             const DecodeLimits& limits);

// Validates a generate payload that is already a private copy (`bytes` owned by the caller).
// Exposed for the fuzz target and tests; decode_request calls it.
PolledRequest decode_generate_payload(std::uint64_t request_id, const std::byte* bytes,
                                      std::uint64_t size, const DecodeLimits& limits);

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
// On failure *bad_offset (when given) is the offset of the first bad byte.
bool is_valid_utf8(const char* text, std::size_t size, std::size_t* bad_offset = nullptr);

}  // namespace llmq::ipc

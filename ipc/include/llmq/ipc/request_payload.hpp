// The generate payload: how a GenerateRequest is laid out in the arena (protocol 1).
//
// Little-endian, fixed-width, no padding, no alignment required (the decoder reads every field
// with memcpy from its own copy):
//
//   offset  size  field
//   0       4     u32 payload_version          kPayloadVersion
//   4       4     u32 flags                    kPayload* bits below; others must be 0
//   8       4     f32 temperature
//   12      4     f32 top_p
//   16      4     f32 min_p
//   20      4     f32 repetition_penalty
//   24      4     f32 presence_penalty
//   28      4     f32 frequency_penalty
//   32      4     i32 top_k
//   36      4     i32 penalty_last_n
//   40      4     i32 max_tokens
//   44      4     i32 priority
//   48      8     u64 seed
//   56      4     u32 prompt_length            bytes of text, or number of token ids
//   60      4     u32 stop_count
//   64      ...   prompt: prompt_length bytes of UTF-8, or prompt_length × i32 token ids
//   ...     ...   stop_count × { u32 length; length bytes of UTF-8 }
//   with kPayloadHasImages (added in payload version 1 as a flag, so every older payload reads
//   as before and an older daemon refuses the flag by name):
//   ...     4     u32 image_count              >= 1
//   ...     ...   image_count × { u32 length; length bytes (PNG or JPEG) }
//   With images a token prompt holds one kImagePromptToken (-1) per image, where it goes (a
//   daemon before that refuses images with token ids by name).
//
// The payload ends exactly after the last stop string (or image); trailing bytes are refused.
#pragma once

#include <cstdint>
#include <vector>

#include "llmq/ipc/generate_request.hpp"
#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

inline constexpr std::uint32_t kPayloadVersion = 1;
inline constexpr std::uint64_t kPayloadFixedBytes = 64;

inline constexpr std::uint32_t kPayloadAddBos = 1u << 0;
inline constexpr std::uint32_t kPayloadIgnoreEos = 1u << 1;
inline constexpr std::uint32_t kPayloadLogprobs = 1u << 2;
inline constexpr std::uint32_t kPayloadSeedSet = 1u << 3;
inline constexpr std::uint32_t kPayloadPromptIsTokens = 1u << 4;
inline constexpr std::uint32_t kPayloadHasImages = 1u << 5;
inline constexpr std::uint32_t kPayloadKnownFlags = (1u << 6) - 1;

// Bytes encode_generate_payload() would write, or an error when a count does not fit its u32
// field.
[[nodiscard]] Result<std::uint64_t> generate_payload_size(const GenerateRequest& request);

// Appends the payload for `request` to `out`. Checks only what the format cannot carry (counts
// beyond u32); the daemon validates everything else.
[[nodiscard]] Result<void> encode_generate_payload(const GenerateRequest& request,
                                                   std::vector<std::byte>& out);

}  // namespace llmq::ipc

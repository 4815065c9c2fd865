// The layout of one client's private region: the bytes the daemon and one client share.
//
// A region is an anonymous memfd the daemon creates per connection, sizes, seals against
// resizing and hands to the client over the socket (listener.hpp, client.hpp). It holds only
// plain data: fixed-width integers, offsets from the region's start (never pointers), fixed-size
// records. Everything here is little-endian (the only byte order llmq builds for).
//
//   offset  size                       what                               written by
//   ------  -------------------------  ---------------------------------  ----------------
//   0       128                        RegionHeader                       daemon, once
//   128     64                         request ring head (u64)            client
//   192     64                         request ring tail (u64)            daemon
//   256     64                         response ring head (u64)           daemon
//   320     64                         response ring tail (u64)           client
//   384     64                         daemon_sleeping (u32)              daemon
//   448     64                         client_wake futex word (u32)       daemon
//   512     64                         client_waiting (u32)               client
//   4096    request_capacity × 64      request slots (RequestDescriptor)  client
//   ...     response_capacity × 128    response slots (ResponseEvent)     daemon
//   ...     (page aligned) .. end      arena: request payloads            client
//
// Each control word sits alone on its cache line so the two sides never write the same line.
// The rings are single-producer single-consumer (spsc_ring.hpp); the arena belongs to the client
// (client_region.hpp says how it is allocated and when space is reused).
//
// Wake-ups (no lock is ever shared between daemon and client):
//  - toward the daemon: after publishing a descriptor the client reads daemon_sleeping and, when
//    it is 1, writes 1 to the doorbell eventfd the daemon waits on in its event loop;
//  - toward the client: after publishing events the daemon reads client_waiting and, when it is
//    1, increments client_wake and calls FUTEX_WAKE on it; the client sleeps with FUTEX_WAIT on
//    client_wake (with a timeout) after spinning briefly.
//
// The daemon writes the header once, before the hand-over, and afterwards uses only its own
// copy (RegionLayout); it never reads a header field, a ring index or a slot twice.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

static_assert(std::endian::native == std::endian::little,
              "llmq's shared-memory protocol is little-endian");

// Version of the socket handshake and region protocol; both sides must speak the same.
inline constexpr std::uint32_t kProtocolVersion = 1;
// "LLMQRGN1" read as a little-endian u64.
inline constexpr std::uint64_t kRegionMagic = 0x314e4752514d4c4cull;

// ---- request ring records ------------------------------------------------------------------

enum class RequestKind : std::uint32_t {
    generate = 1,  // payload: a generate payload (request_payload.hpp)
    cancel = 2,    // request_id names the request to cancel; no payload
    ping = 3,      // answered with a pong event without touching the engine; no payload
};

// One request, as the client publishes it on the request ring.
struct RequestDescriptor {
    std::uint64_t request_id;      // chosen by the client, non-zero, unique on its connection
    std::uint64_t payload_offset;  // from the start of the arena
    std::uint64_t payload_length;  // bytes; 0 for cancel and ping
    std::uint32_t kind;            // RequestKind
    std::uint32_t flags;           // none defined in protocol 1: must be 0
    std::uint8_t reserved[32];     // ignored
};
static_assert(sizeof(RequestDescriptor) == 64);
static_assert(offsetof(RequestDescriptor, payload_offset) == 8);
static_assert(offsetof(RequestDescriptor, payload_length) == 16);
static_assert(offsetof(RequestDescriptor, kind) == 24);
static_assert(offsetof(RequestDescriptor, flags) == 28);

// ---- response ring records -----------------------------------------------------------------

enum class EventKind : std::uint32_t {
    token = 1,  // one generated token: token_id, optional logprob, text piece
    final = 2,  // the request finished: code = FinishReason, token counts, timings
    error = 3,  // the request failed: code = EventError, text = message naming the field
    pong = 4,   // answer to a ping
};

enum class FinishReason : std::uint32_t {
    eos = 1,          // the model produced an end-of-sequence token
    length = 2,       // max_tokens (or the context) reached
    stop_string = 3,  // one of the request's stop strings appeared
    cancelled = 4,    // the client cancelled it
};

enum class EventError : std::uint32_t {
    invalid_request = 1,  // a field of the request is wrong; the message names it
    busy = 2,             // the daemon's queue is full; try again later
    shutting_down = 3,    // the daemon is draining and takes no new requests
    stalled = 4,          // the client did not read its events within stall_timeout
    internal = 5,         // a fault inside the daemon
};

inline constexpr std::uint32_t kEventTextBytes = 64;

// Event flags.
inline constexpr std::uint32_t kEventContinues = 1u << 0;  // text goes on in the next slot
inline constexpr std::uint32_t kEventHasLogprob = 1u << 1;

// One event slot. A logical event whose text is longer than kEventTextBytes takes several
// consecutive slots: every slot but the last carries kEventContinues, all carry the same
// request_id and kind, and the daemon publishes all of them with one store of the head index,
// so a reader sees either none or all of them.
struct ResponseEvent {
    std::uint64_t request_id;
    std::uint32_t kind;              // EventKind
    std::uint32_t flags;             // kEventContinues | kEventHasLogprob
    std::int32_t token_id;           // token
    float logprob;                   // token, when kEventHasLogprob
    std::uint32_t code;              // final: FinishReason; error: EventError
    std::uint32_t text_length;       // bytes of text used in this slot, <= kEventTextBytes
    std::uint32_t prompt_tokens;     // final
    std::uint32_t generated_tokens;  // final
    std::uint64_t queued_us;         // final: from arrival to first scheduled step
    std::uint64_t prefill_us;        // final: from first step to first token
    std::uint64_t decode_us;         // final: from first token to the end
    char text[kEventTextBytes];      // token piece (UTF-8, may split a code point) or message
};
static_assert(sizeof(ResponseEvent) == 128);
static_assert(offsetof(ResponseEvent, token_id) == 16);
static_assert(offsetof(ResponseEvent, code) == 24);
static_assert(offsetof(ResponseEvent, queued_us) == 40);
static_assert(offsetof(ResponseEvent, text) == 64);

// ---- the fixed part of the region ------------------------------------------------------------

struct RegionHeader {
    std::uint64_t magic;                    // kRegionMagic
    std::uint32_t protocol_version;         // kProtocolVersion
    std::uint32_t layout_signature;         // kLayoutSignature
    std::uint64_t region_size;              // bytes, equals the memfd's size
    std::uint64_t request_slots_offset;
    std::uint32_t request_capacity;         // slots, a power of two
    std::uint32_t request_descriptor_size;  // sizeof(RequestDescriptor)
    std::uint64_t response_slots_offset;
    std::uint32_t response_capacity;        // slots, a power of two
    std::uint32_t response_event_size;      // sizeof(ResponseEvent)
    std::uint64_t arena_offset;
    std::uint64_t arena_size;
    std::uint8_t reserved[56];
};
static_assert(sizeof(RegionHeader) == 128);

struct alignas(64) ControlWord64 {
    std::uint64_t value;
    std::uint8_t pad[56];
};
struct alignas(64) ControlWord32 {
    std::uint32_t value;
    std::uint8_t pad[60];
};
static_assert(sizeof(ControlWord64) == 64 && sizeof(ControlWord32) == 64);

struct RegionControl {
    RegionHeader header;
    ControlWord64 request_head;
    ControlWord64 request_tail;
    ControlWord64 response_head;
    ControlWord64 response_tail;
    ControlWord32 daemon_sleeping;
    ControlWord32 client_wake;
    ControlWord32 client_waiting;
};
static_assert(offsetof(RegionControl, request_head) == 128);
static_assert(offsetof(RegionControl, request_tail) == 192);
static_assert(offsetof(RegionControl, response_head) == 256);
static_assert(offsetof(RegionControl, response_tail) == 320);
static_assert(offsetof(RegionControl, daemon_sleeping) == 384);
static_assert(offsetof(RegionControl, client_wake) == 448);
static_assert(offsetof(RegionControl, client_waiting) == 512);
static_assert(sizeof(RegionControl) == 576);

inline constexpr std::uint64_t kRegionControlBytes = 4096;
static_assert(sizeof(RegionControl) <= kRegionControlBytes);

// A signature of every size and offset above, checked at attach (as LMDB checks its lock
// format): a client built against another layout is refused even if the versions agree.
namespace layout_detail {
constexpr std::uint32_t fnv1a(std::uint32_t hash, std::uint64_t value) {
    for (int i = 0; i < 8; ++i) {
        hash ^= static_cast<std::uint32_t>((value >> (8 * i)) & 0xff);
        hash *= 16777619u;
    }
    return hash;
}
constexpr std::uint32_t signature() {
    const std::uint64_t parts[] = {
        sizeof(RequestDescriptor), offsetof(RequestDescriptor, payload_offset),
        offsetof(RequestDescriptor, payload_length), offsetof(RequestDescriptor, kind),
        offsetof(RequestDescriptor, flags),
        sizeof(ResponseEvent), offsetof(ResponseEvent, flags), offsetof(ResponseEvent, token_id),
        offsetof(ResponseEvent, logprob), offsetof(ResponseEvent, code),
        offsetof(ResponseEvent, text_length), offsetof(ResponseEvent, prompt_tokens),
        offsetof(ResponseEvent, queued_us), offsetof(ResponseEvent, text), kEventTextBytes,
        sizeof(RegionHeader), offsetof(RegionHeader, arena_size),
        offsetof(RegionControl, request_head), offsetof(RegionControl, request_tail),
        offsetof(RegionControl, response_head), offsetof(RegionControl, response_tail),
        offsetof(RegionControl, daemon_sleeping), offsetof(RegionControl, client_wake),
        offsetof(RegionControl, client_waiting), kRegionControlBytes,
    };
    std::uint32_t hash = 2166136261u;
    for (std::uint64_t part : parts) hash = fnv1a(hash, part);
    return hash;
}
}  // namespace layout_detail

inline constexpr std::uint32_t kLayoutSignature = layout_detail::signature();

// ---- geometry and the private copy of the layout ------------------------------------------

// What the daemon's [ipc] configuration chooses for each region.
struct RegionGeometry {
    std::uint64_t region_size = 4u << 20;     // bytes of the whole memfd
    std::uint32_t request_capacity = 256;     // request slots, power of two, 2..65536
    std::uint32_t response_capacity = 4096;   // event slots, power of two, 2..1048576
};

inline constexpr std::uint64_t kMinArenaBytes = 64u << 10;
inline constexpr std::uint64_t kMaxRegionBytes = std::uint64_t{1} << 32;

// Where each part lives; each side keeps its own copy after creation or attach.
struct RegionLayout {
    std::uint64_t region_size = 0;
    std::uint64_t request_slots_offset = 0;
    std::uint32_t request_capacity = 0;
    std::uint64_t response_slots_offset = 0;
    std::uint32_t response_capacity = 0;
    std::uint64_t arena_offset = 0;
    std::uint64_t arena_size = 0;
};

// Places the parts for a geometry, or says why it cannot (sizes not powers of two, region too
// small for the rings plus kMinArenaBytes of arena, larger than kMaxRegionBytes).
[[nodiscard]] Result<RegionLayout> compute_layout(const RegionGeometry& geometry);

// The header the daemon writes for a layout.
RegionHeader make_header(const RegionLayout& layout);

// Checks a copy of a header against the size actually mapped (the client's attach): magic,
// version, signature, record sizes, and that every part lies inside `mapped_size` without
// overlapping another. Returns the layout it describes.
[[nodiscard]] Result<RegionLayout> layout_from_header(const RegionHeader& copy, std::uint64_t mapped_size);

}  // namespace llmq::ipc

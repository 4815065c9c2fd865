// ClientRegion: the client's side of its private region.
//
// The client produces on the request ring, owns the arena and consumes the response ring. It
// trusts the daemon more than the daemon trusts it, but still checks the header against the
// memfd's real size and seals at attach, and turns an impossible ring index into a protocol
// error instead of reading out of bounds.
//
// Arena allocation: payloads are placed first-in first-out in the arena, 8-byte aligned, one
// contiguous range each (wrapping to offset 0 when the end does not fit). The daemon copies a
// payload out before it advances the request ring's tail past its descriptor, so the space of
// every payload whose descriptor the daemon has consumed is free again; since the daemon consumes
// in order, space comes back in the order it was taken and a FIFO suffices.
//
// Thread: one thread at a time (the owner of the Client).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>

#include "llmq/ipc/event.hpp"
#include "llmq/ipc/region_layout.hpp"
#include "llmq/ipc/result.hpp"
#include "llmq/ipc/spsc_ring.hpp"
#include "llmq/ipc/unique_fd.hpp"

namespace llmq::ipc {

class ClientRegion {
public:
    // Maps the memfd, checks its seals (no shrink, no grow), its size against the header and the
    // header itself (layout_from_header). Takes ownership of both descriptors.
    [[nodiscard]] static Result<std::unique_ptr<ClientRegion>> attach(UniqueFd memfd, UniqueFd doorbell);

    ~ClientRegion();
    ClientRegion(const ClientRegion&) = delete;
    ClientRegion& operator=(const ClientRegion&) = delete;

    const RegionLayout& layout() const { return layout_; }

    // Copies `payload` into the arena, publishes a descriptor and rings the doorbell when the
    // daemon sleeps. Errors: busy (ring or arena full right now: the daemon is behind),
    // invalid_argument (payload larger than the arena), protocol (daemon broke the ring).
    [[nodiscard]] Result<void> submit(std::uint64_t request_id, RequestKind kind,
                                      std::span<const std::byte> payload);

    // Takes the next complete event (all its slots) off the response ring, or nullopt when none
    // is published. Error: protocol (daemon broke the ring or an event's continuation).
    [[nodiscard]] Result<std::optional<Event>> try_pop_event();

    // True when an event is published and not yet taken.
    bool has_events();

    // Spins (pause instruction) until an event is published or `spin` has passed.
    bool spin_for_events(std::chrono::nanoseconds spin);
    // Sleeps on the futex until the daemon publishes an event or `timeout` passes (re-checks
    // the ring after announcing itself, so a publish in between is never missed).
    void sleep_for_events(std::chrono::nanoseconds timeout);

    // Descriptors published but not yet consumed by the daemon.
    std::uint64_t requests_in_flight();

private:
    ClientRegion() = default;
    std::uint32_t* word32(std::uint64_t offset);
    std::optional<std::uint64_t> allocate(std::uint64_t size);
    void reclaim();

    struct Allocation {
        std::uint64_t ring_index;  // the descriptor's index on the request ring
        std::uint64_t offset;
        std::uint64_t length;
    };

    RegionLayout layout_;
    std::byte* base_ = nullptr;
    UniqueFd memfd_;
    UniqueFd doorbell_;
    RingProducer<RequestDescriptor> requests_;
    RingConsumer<ResponseEvent> events_;
    std::deque<Allocation> allocations_;  // oldest first
    std::uint64_t arena_end_ = 0;         // end of the newest allocation
};

}  // namespace llmq::ipc

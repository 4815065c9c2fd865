// ServerRegion: the daemon's side of one client's private region.
//
// Created by the Listener for each connection (or directly in tests), it owns the mapping and
// the doorbell eventfd. It keeps its own copy of the layout and never re-reads the header; it
// reads the client's ring indices once per use, refuses impossible values (the ring becomes
// faulted and the connection must be closed), and copies every descriptor and payload out once
// before validating it (request_decoder.hpp).
//
// Threads: the request side (poll, has_pending_requests, arm/disarm/drain_doorbell) is used by
// one thread at a time; the event side (push_event, writable_event_slots, events_drained) by one
// thread at a time; the two sides may be different threads. The daemon's Asio thread is the
// natural home of the request side, the engine's thread of the event side.
//
// Lifetime: shared_ptr; the mapping stays valid until the last owner drops it, so an engine
// thread that still holds a request of a client that has just disconnected can keep pushing
// into the (now unread) region safely.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "llmq/ipc/event.hpp"
#include "llmq/ipc/region_layout.hpp"
#include "llmq/ipc/request_decoder.hpp"
#include "llmq/ipc/result.hpp"
#include "llmq/ipc/spsc_ring.hpp"
#include "llmq/ipc/unique_fd.hpp"

namespace llmq::ipc {

class ServerRegion {
public:
    // Creates a sealed memfd of geometry.region_size (MFD_CLOEXEC | MFD_ALLOW_SEALING, then
    // F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), maps it, writes the header and creates the
    // doorbell eventfd (EFD_CLOEXEC | EFD_NONBLOCK). Nothing appears in /dev/shm.
    [[nodiscard]] static Result<std::shared_ptr<ServerRegion>> create(const RegionGeometry& geometry);

    ~ServerRegion();
    ServerRegion(const ServerRegion&) = delete;
    ServerRegion& operator=(const ServerRegion&) = delete;

    const RegionLayout& layout() const { return layout_; }

    // The memfd to hand to the client; -1 after close_memfd(). Borrowed.
    int memfd() const { return memfd_.get(); }
    // Drops the daemon's descriptor of the memfd once it has been handed over (the mapping stays).
    void close_memfd() { memfd_.reset(); }
    // The doorbell: readable when the client rang. Borrowed; owned by the region for its life.
    int doorbell_fd() const { return doorbell_.get(); }

    // ---- request side ----

    // True when the client has published descriptors not yet polled.
    bool has_pending_requests();

    // Takes up to `max` descriptors off the request ring, decodes each (copy once, validate the
    // copy) and appends a DecodedRequest or a RequestDefect per descriptor to `out`. Returns how
    // many it appended. The descriptors' slots and payload space go back to the client.
    // When the client corrupted the ring index, appends nothing and faulted() turns true.
    std::size_t poll(const DecodeLimits& limits, std::vector<PolledRequest>& out,
                     std::size_t max = SIZE_MAX);

    // The doorbell protocol. The flag daemon_sleeping (1 at creation) tells the client to ring
    // the eventfd after publishing. A daemon that polls this region on its own (busy, spinning)
    // may disarm it to save the client the write; before it stops polling it must arm it again:
    // arm_doorbell() sets the flag and re-checks the ring, returning false (flag cleared again)
    // when a request slipped in, which the caller then polls instead of sleeping.
    [[nodiscard]] bool arm_doorbell();
    void disarm_doorbell();
    // Resets the eventfd after it fired (call before poll(), so a ring after it is not lost).
    void drain_doorbell();

    // ---- event side ----

    // Event slots free on the response ring now (0 when faulted).
    std::uint64_t writable_event_slots();

    // Publishes one event (event_slot_count(event) slots, all at once) and wakes the client if
    // it sleeps. Returns false, publishing nothing, when the ring lacks the space: the client is
    // not reading. The daemon then pauses that request and retries; it cancels it after its
    // stall timeout (the daemon keeps that time, this class does not).
    [[nodiscard]] bool push_event(const Event& event);

    // True when the client has read every published event.
    bool events_drained();

    // True when the client wrote an impossible ring index; nothing more is read or written on
    // that ring, and the daemon should close the connection (the Listener does so after
    // on_requests). Any thread.
    bool faulted() const { return faulted_.load(std::memory_order_relaxed); }

private:
    ServerRegion() = default;

    std::uint32_t* word32(std::uint64_t offset);

    RegionLayout layout_;
    std::byte* base_ = nullptr;
    UniqueFd memfd_;
    UniqueFd doorbell_;
    RingConsumer<RequestDescriptor> requests_;
    RingProducer<ResponseEvent> events_;
    std::atomic<bool> faulted_{false};  // either ring; set by the side that found it
};

}  // namespace llmq::ipc

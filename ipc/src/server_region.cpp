#include "llmq/ipc/server_region.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "llmq/ipc/futex.hpp"

namespace llmq::ipc {

Result<std::shared_ptr<ServerRegion>> ServerRegion::create(const RegionGeometry& geometry) {
    auto layout = compute_layout(geometry);
    if (!layout) return layout.error();

    std::shared_ptr<ServerRegion> region(new ServerRegion());
    region->layout_ = *layout;
    region->memfd_.reset(::memfd_create("llmq-region", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!region->memfd_.valid()) return errno_error("creating a client region (memfd_create)");
    if (::ftruncate(region->memfd_.get(), static_cast<off_t>(layout->region_size)) != 0) {
        return errno_error("sizing a client region to " + std::to_string(layout->region_size) + " bytes");
    }
    void* base = ::mmap(nullptr, layout->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, region->memfd_.get(), 0);
    if (base == MAP_FAILED) return errno_error("mapping a client region");
    region->base_ = static_cast<std::byte*>(base);
    if (::fcntl(region->memfd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        return errno_error("sealing a client region");
    }
    region->doorbell_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!region->doorbell_.valid()) return errno_error("creating a client doorbell (eventfd)");

    // The memfd starts zeroed: every index is 0. Only the header and the flag need writing.
    auto* control = reinterpret_cast<RegionControl*>(region->base_);
    control->header = make_header(*layout);
    control->daemon_sleeping.value = 1;

    region->requests_ = RingConsumer<RequestDescriptor>(
        &control->request_head.value, &control->request_tail.value,
        reinterpret_cast<RequestDescriptor*>(region->base_ + layout->request_slots_offset),
        layout->request_capacity, 0);
    region->events_ = RingProducer<ResponseEvent>(
        &control->response_head.value, &control->response_tail.value,
        reinterpret_cast<ResponseEvent*>(region->base_ + layout->response_slots_offset),
        layout->response_capacity, 0);
    return region;
}

ServerRegion::~ServerRegion() {
    if (base_ != nullptr) ::munmap(base_, layout_.region_size);
}

std::uint32_t* ServerRegion::word32(std::uint64_t offset) {
    return reinterpret_cast<std::uint32_t*>(base_ + offset);
}

bool ServerRegion::has_pending_requests() {
    const bool pending = requests_.readable() != 0;
    if (requests_.faulted()) faulted_.store(true, std::memory_order_relaxed);
    return pending;
}

std::size_t ServerRegion::poll(const DecodeLimits& limits, std::vector<PolledRequest>& out, std::size_t max) {
    const std::uint64_t available = std::min<std::uint64_t>(requests_.readable(), max);
    if (requests_.faulted()) faulted_.store(true, std::memory_order_relaxed);
    const ArenaView arena{base_ + layout_.arena_offset, layout_.arena_size};
    for (std::uint64_t k = 0; k < available; ++k) {
        RequestDescriptor copy;
        requests_.copy(k, copy);
        out.push_back(decode_request(copy, arena, limits));
    }
    // Payloads were copied out above; releasing the slots hands their arena space back too.
    if (available != 0) requests_.release(available);
    return static_cast<std::size_t>(available);
}

bool ServerRegion::arm_doorbell() {
    std::atomic_ref<std::uint32_t> flag(*word32(offsetof(RegionControl, daemon_sleeping)));
    // Against the client's "publish head, then read the flag" (both seq_cst): either it sees 1
    // and rings, or we see its descriptor here.
    flag.store(1, std::memory_order_seq_cst);
    if (requests_.readable() != 0) {
        flag.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void ServerRegion::disarm_doorbell() {
    std::atomic_ref<std::uint32_t>(*word32(offsetof(RegionControl, daemon_sleeping)))
        .store(0, std::memory_order_relaxed);
}

void ServerRegion::drain_doorbell() {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(doorbell_.get(), &count, sizeof count);
}

std::uint64_t ServerRegion::writable_event_slots() {
    // Always the client's current index: callers need several slots (a long event, the
    // daemon's headroom), and writable() refreshes a cached index only once it reads "full".
    const std::uint64_t writable = events_.capacity() - events_.unconsumed();
    if (events_.faulted()) faulted_.store(true, std::memory_order_relaxed);
    return writable;
}

bool ServerRegion::push_event(const Event& event) {
    const std::uint64_t slots = event_slot_count(event);
    const std::uint64_t writable = events_.writable(slots);
    if (events_.faulted()) faulted_.store(true, std::memory_order_relaxed);
    if (writable < slots) return false;
    for (std::uint64_t i = 0; i < slots; ++i) {
        ResponseEvent e{};
        e.request_id = event.request_id;
        e.kind = static_cast<std::uint32_t>(event.kind);
        e.token_id = event.token_id;
        e.logprob = event.logprob;
        e.code = event.code;
        e.prompt_tokens = event.prompt_tokens;
        e.generated_tokens = event.generated_tokens;
        e.queued_us = event.queued_us;
        e.prefill_us = event.prefill_us;
        e.decode_us = event.decode_us;
        const std::size_t from = static_cast<std::size_t>(i * kEventTextBytes);
        const std::size_t length = std::min<std::size_t>(kEventTextBytes, event.text.size() - std::min(from, event.text.size()));
        std::memcpy(e.text, event.text.data() + from, length);
        e.text_length = static_cast<std::uint32_t>(length);
        e.flags = (event.has_logprob ? kEventHasLogprob : 0) | (i + 1 < slots ? kEventContinues : 0);
        std::memcpy(&events_.unpublished(i), &e, sizeof e);
    }
    events_.publish(slots);

    // Against the client's "set client_waiting, then read head" (both seq_cst): either it sees
    // these events, or we see it waiting and wake it.
    std::uint32_t* waiting = word32(offsetof(RegionControl, client_waiting));
    if (std::atomic_ref<std::uint32_t>(*waiting).load(std::memory_order_seq_cst) != 0) {
        std::uint32_t* wake = word32(offsetof(RegionControl, client_wake));
        std::atomic_ref<std::uint32_t>(*wake).fetch_add(1, std::memory_order_release);
        futex_wake_all(wake);
    }
    return true;
}

bool ServerRegion::events_drained() {
    const bool drained = events_.drained();
    if (events_.faulted()) faulted_.store(true, std::memory_order_relaxed);
    return drained;
}

}  // namespace llmq::ipc

#include "llmq/ipc/client_region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include "llmq/ipc/futex.hpp"

namespace llmq::ipc {
namespace {

// Events are reassembled up to this many bytes of text; a daemon that sends more is broken.
constexpr std::size_t kMaxReassembledText = 1u << 20;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

Error protocol_error(const std::string& why) {
    return make_error(ErrorCode::protocol, "llmqd broke the region protocol: " + why + "; reconnect");
}

}  // namespace

Result<std::unique_ptr<ClientRegion>> ClientRegion::attach(UniqueFd memfd, UniqueFd doorbell) {
    const int seals = ::fcntl(memfd.get(), F_GET_SEALS);
    if (seals < 0) return errno_error("checking the region's seals");
    if ((seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_GROW) == 0) {
        return protocol_error("the region is not sealed against resizing");
    }
    struct stat st {};
    if (::fstat(memfd.get(), &st) != 0) return errno_error("reading the region's size");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < kRegionControlBytes || size > kMaxRegionBytes) {
        return protocol_error("region of " + std::to_string(size) + " bytes");
    }
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
    if (base == MAP_FAILED) return errno_error("mapping the region");

    std::unique_ptr<ClientRegion> region(new ClientRegion());
    region->base_ = static_cast<std::byte*>(base);
    region->layout_.region_size = size;  // for munmap, should the header be refused below

    RegionHeader header;
    std::memcpy(&header, base, sizeof header);
    auto layout = layout_from_header(header, size);
    if (!layout) return layout.error();
    region->layout_ = *layout;
    region->memfd_ = std::move(memfd);
    region->doorbell_ = std::move(doorbell);

    auto* control = reinterpret_cast<RegionControl*>(region->base_);
    const std::uint64_t request_head =
        std::atomic_ref<std::uint64_t>(control->request_head.value).load(std::memory_order_acquire);
    const std::uint64_t response_tail =
        std::atomic_ref<std::uint64_t>(control->response_tail.value).load(std::memory_order_acquire);
    region->requests_ = RingProducer<RequestDescriptor>(
        &control->request_head.value, &control->request_tail.value,
        reinterpret_cast<RequestDescriptor*>(region->base_ + layout->request_slots_offset),
        layout->request_capacity, request_head);
    region->events_ = RingConsumer<ResponseEvent>(
        &control->response_head.value, &control->response_tail.value,
        reinterpret_cast<ResponseEvent*>(region->base_ + layout->response_slots_offset),
        layout->response_capacity, response_tail);
    return region;
}

ClientRegion::~ClientRegion() {
    if (base_ != nullptr) ::munmap(base_, layout_.region_size);
}

std::uint32_t* ClientRegion::word32(std::uint64_t offset) {
    return reinterpret_cast<std::uint32_t*>(base_ + offset);
}

void ClientRegion::reclaim() {
    if (allocations_.empty()) return;
    requests_.unconsumed();
    const std::uint64_t consumed = requests_.consumer_index();
    while (!allocations_.empty() && allocations_.front().ring_index < consumed) allocations_.pop_front();
    if (allocations_.empty()) arena_end_ = 0;
}

std::optional<std::uint64_t> ClientRegion::allocate(std::uint64_t size) {
    const std::uint64_t need = (size + 7) / 8 * 8;
    const std::uint64_t arena = layout_.arena_size;
    if (need > arena) return std::nullopt;
    if (allocations_.empty()) return 0;
    const std::uint64_t first = allocations_.front().offset;
    const std::uint64_t newest = allocations_.back().offset;
    if (newest >= first) {
        // In use: [first, arena_end_). Free: [arena_end_, arena) and [0, first).
        if (arena - arena_end_ >= need) return arena_end_;
        if (first >= need) return 0;
        return std::nullopt;
    }
    // Wrapped. In use: [first, arena) and [0, arena_end_). Free: [arena_end_, first).
    if (first - arena_end_ >= need) return arena_end_;
    return std::nullopt;
}

Result<void> ClientRegion::submit(std::uint64_t request_id, RequestKind kind, std::span<const std::byte> payload) {
    if (requests_.faulted()) return protocol_error("the request ring's consumer index is impossible");
    if (payload.size() > layout_.arena_size) {
        return make_error(ErrorCode::invalid_argument,
                          "request of " + std::to_string(payload.size()) + " bytes does not fit the " +
                              std::to_string(layout_.arena_size) +
                              "-byte arena; shorten the prompt or raise [ipc] region_size");
    }
    if (requests_.writable() == 0) {
        if (requests_.faulted()) return protocol_error("the request ring's consumer index is impossible");
        return make_error(ErrorCode::busy, "request ring full: llmqd has not taken the " +
                                               std::to_string(layout_.request_capacity) +
                                               " requests before it yet; retry shortly");
    }
    RequestDescriptor d{};
    d.request_id = request_id;
    d.kind = static_cast<std::uint32_t>(kind);
    if (!payload.empty()) {
        reclaim();
        auto offset = allocate(payload.size());
        if (!offset) {
            return make_error(ErrorCode::busy, "arena full: llmqd has not copied earlier requests yet; retry shortly");
        }
        std::memcpy(base_ + layout_.arena_offset + *offset, payload.data(), payload.size());
        d.payload_offset = *offset;
        d.payload_length = payload.size();
        const std::uint64_t end = *offset + (payload.size() + 7) / 8 * 8;
        allocations_.push_back(Allocation{requests_.head(), *offset, payload.size()});
        arena_end_ = end;
    }
    std::memcpy(&requests_.unpublished(0), &d, sizeof d);
    requests_.publish(1);

    // Against the daemon's arm_doorbell() ("set the flag, then read head", both seq_cst):
    // either we see its flag or it sees our descriptor.
    if (std::atomic_ref<std::uint32_t>(*word32(offsetof(RegionControl, daemon_sleeping)))
            .load(std::memory_order_seq_cst) != 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(doorbell_.get(), &one, sizeof one);
    }
    return {};
}

bool ClientRegion::has_events() { return events_.readable() != 0; }

Result<std::optional<Event>> ClientRegion::try_pop_event() {
    const std::uint64_t available = events_.readable();
    if (events_.faulted()) return protocol_error("the response ring's producer index is impossible");
    if (available == 0) return std::optional<Event>();

    ResponseEvent slot;
    events_.copy(0, slot);
    Event e;
    e.request_id = slot.request_id;
    e.kind = static_cast<EventKind>(slot.kind);
    e.token_id = slot.token_id;
    e.logprob = slot.logprob;
    e.has_logprob = (slot.flags & kEventHasLogprob) != 0;
    e.code = slot.code;
    e.prompt_tokens = slot.prompt_tokens;
    e.generated_tokens = slot.generated_tokens;
    e.queued_us = slot.queued_us;
    e.prefill_us = slot.prefill_us;
    e.decode_us = slot.decode_us;
    std::uint64_t used = 1;
    for (;;) {
        if (slot.text_length > kEventTextBytes) return protocol_error("an event's text_length exceeds its slot");
        e.text.append(slot.text, slot.text_length);
        if ((slot.flags & kEventContinues) == 0) break;
        if (used == available) return protocol_error("an event's continuation was not published with it");
        if (e.text.size() > kMaxReassembledText) return protocol_error("an event's text exceeds 1 MiB");
        events_.copy(used, slot);
        ++used;
        if (slot.request_id != e.request_id) return protocol_error("an event's continuation names another request");
    }
    events_.release(used);
    return std::optional<Event>(std::move(e));
}

bool ClientRegion::spin_for_events(std::chrono::nanoseconds spin) {
    const auto until = std::chrono::steady_clock::now() + spin;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (events_.readable() != 0 || events_.faulted()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= until) return false;
    }
}

void ClientRegion::sleep_for_events(std::chrono::nanoseconds timeout) {
    std::uint32_t* wake = word32(offsetof(RegionControl, client_wake));
    std::atomic_ref<std::uint32_t> waiting(*word32(offsetof(RegionControl, client_waiting)));
    const std::uint32_t seen = std::atomic_ref<std::uint32_t>(*wake).load(std::memory_order_acquire);
    // Against the daemon's push_event() ("publish head, then read client_waiting", both
    // seq_cst): either it sees us waiting and wakes us, or we see its event here.
    waiting.store(1, std::memory_order_seq_cst);
    if (events_.readable() == 0 && !events_.faulted()) futex_wait(wake, seen, timeout);
    waiting.store(0, std::memory_order_relaxed);
}

std::uint64_t ClientRegion::requests_in_flight() { return requests_.unconsumed(); }

}  // namespace llmq::ipc

// A single-producer single-consumer ring of fixed-size slots in shared memory.
//
// The ring is two u64 indices (each on its own cache line in RegionControl) and an array of
// `capacity` slots, capacity a power of two. The indices are free-running counters that are
// never reduced; the slot of index i is i & (capacity - 1). The producer owns `head`, the
// consumer owns `tail`; each keeps its own index in private memory, publishes it with a release
// store and never reads it back from shared memory.
//
// States (capacity 4):
//
//   empty: head == tail               two in flight: head - tail == 2
//        tail,head                         tail        head
//          v                                 v           v
//        [ . | . | . | . ]                 [ A  | B  | . | . ]
//
//   full: head - tail == capacity      wrapped: tail == 6, head == 9
//        tail,head (same slot)                 head&3  tail&3
//          v                                     v       v
//        [ A | B | C | D ]                 [ H  | .  | F | G ]     F, G, H in flight
//
//   impossible: head - tail > capacity (computed in u64, so tail > head lands here too).
//   An endpoint that reads such a peer index marks itself faulted and never touches a slot
//   again: the peer corrupted its ring and the connection must be closed.
//
// Producer: write slots [head, head + n) while they are unpublished (the consumer never reads
// them), then store head + n. Consumer: load head, copy slots [tail, head) out
// (copy_from_shared), then store tail + k; only after that store may the producer overwrite
// those slots.
//
// Index stores and loads are sequentially consistent, not just release/acquire: the wake-up
// handshakes (region_layout.hpp) are Dekker-style — "publish head, then read the peer's sleep
// flag" against "set the sleep flag, then read head" — and need one total order over the four
// accesses. On x86 this costs one locked store per publish. (No fences: ThreadSanitizer checks
// the protocol as written.)
//
// Threads: one thread may use a RingProducer, one (possibly other) thread its RingConsumer.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "llmq/ipc/shared_copy.hpp"

namespace llmq::ipc {

template <typename Slot>
class RingProducer {
public:
    RingProducer() = default;
    // `head` and `tail` point at the shared indices, `slots` at capacity slots.
    // `start` is the producer's index to continue from (0 for a fresh region).
    RingProducer(std::uint64_t* head, std::uint64_t* tail, Slot* slots, std::uint32_t capacity,
                 std::uint64_t start)
        : head_(head), tail_(tail), slots_(slots), mask_(capacity - 1), capacity_(capacity),
          local_head_(start), cached_tail_(start) {}

    // Slots the producer may write now: capacity minus what the consumer has not released.
    // Re-reads the consumer's index only when the cached one leaves fewer than `wanted` free,
    // so the answer is at least `wanted` whenever the consumer has really made that much room.
    // 0 once faulted.
    std::uint64_t writable(std::uint64_t wanted = 1) {
        if (faulted_) return 0;
        const std::uint64_t used = local_head_ - cached_tail_;
        if (capacity_ - used >= wanted) return capacity_ - used;
        return capacity_ - unconsumed();
    }

    // Published slots the consumer has not released yet; always re-reads its index.
    // Returns capacity (nothing writable) once faulted.
    std::uint64_t unconsumed() {
        if (faulted_) return capacity_;
        const std::uint64_t tail = std::atomic_ref<std::uint64_t>(*tail_).load(std::memory_order_seq_cst);
        const std::uint64_t used = local_head_ - tail;
        if (used > capacity_) {
            faulted_ = true;
            return capacity_;
        }
        cached_tail_ = tail;
        return used;
    }

    // The k-th slot after head, k < writable(); private to the producer until published.
    Slot& unpublished(std::uint64_t k) { return slots_[(local_head_ + k) & mask_]; }

    // Makes the first n unpublished slots visible to the consumer, n <= writable().
    void publish(std::uint64_t n) {
        local_head_ += n;
        std::atomic_ref<std::uint64_t>(*head_).store(local_head_, std::memory_order_seq_cst);
    }

    bool try_push(const Slot& slot) {
        if (writable() == 0) return false;
        std::memcpy(&unpublished(0), &slot, sizeof(Slot));
        publish(1);
        return true;
    }

    // True when nothing published is still unread by the consumer.
    bool drained() { return unconsumed() == 0; }

    std::uint64_t head() const { return local_head_; }
    // The consumer's index as last read (refreshed by writable()).
    std::uint64_t consumer_index() const { return cached_tail_; }
    bool faulted() const { return faulted_; }
    std::uint32_t capacity() const { return capacity_; }

private:
    std::uint64_t* head_ = nullptr;
    std::uint64_t* tail_ = nullptr;
    Slot* slots_ = nullptr;
    std::uint64_t mask_ = 0;
    std::uint64_t capacity_ = 0;
    std::uint64_t local_head_ = 0;
    std::uint64_t cached_tail_ = 0;
    bool faulted_ = false;
};

template <typename Slot>
class RingConsumer {
public:
    RingConsumer() = default;
    RingConsumer(std::uint64_t* head, std::uint64_t* tail, Slot* slots, std::uint32_t capacity,
                 std::uint64_t start)
        : head_(head), tail_(tail), slots_(slots), mask_(capacity - 1), capacity_(capacity),
          local_tail_(start), cached_head_(start) {}

    // Published slots not yet released. Reads the producer's index once; 0 once faulted.
    std::uint64_t readable() {
        if (faulted_) return 0;
        cached_head_ = std::atomic_ref<std::uint64_t>(*head_).load(std::memory_order_seq_cst);
        const std::uint64_t count = cached_head_ - local_tail_;
        if (count > capacity_) {
            faulted_ = true;
            return 0;
        }
        return count;
    }

    // Copies the k-th published slot after tail into `out` (k < readable()).
    void copy(std::uint64_t k, Slot& out) const {
        copy_from_shared(&out, reinterpret_cast<std::byte*>(&slots_[(local_tail_ + k) & mask_]),
                         sizeof(Slot));
    }

    // Hands the first n read slots back to the producer.
    void release(std::uint64_t n) {
        local_tail_ += n;
        std::atomic_ref<std::uint64_t>(*tail_).store(local_tail_, std::memory_order_seq_cst);
    }

    bool try_pop(Slot& out) {
        if (readable() == 0) return false;
        copy(0, out);
        release(1);
        return true;
    }

    std::uint64_t tail() const { return local_tail_; }
    bool faulted() const { return faulted_; }
    std::uint32_t capacity() const { return static_cast<std::uint32_t>(capacity_); }

private:
    std::uint64_t* head_ = nullptr;
    std::uint64_t* tail_ = nullptr;
    Slot* slots_ = nullptr;
    std::uint64_t mask_ = 0;
    std::uint64_t capacity_ = 0;
    std::uint64_t local_tail_ = 0;
    std::uint64_t cached_head_ = 0;
    bool faulted_ = false;
};

}  // namespace llmq::ipc

// copy_from_shared: copy bytes out of memory another process may be rewriting at the same time.
//
// The daemon reads each descriptor and payload exactly once, through this function, into
// memory it owns, and validates only the copy. The loads are relaxed atomics (8 bytes at a time
// where aligned, bytes elsewhere), so a client that rewrites the bytes while they are copied
// gives a torn but harmless copy, not undefined behaviour: the copy is checked afterwards like
// any other hostile input.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace llmq::ipc {

inline void copy_from_shared(void* destination, std::byte* source, std::size_t size) {
    auto* out = static_cast<unsigned char*>(destination);
    auto* in = reinterpret_cast<unsigned char*>(source);
    std::size_t i = 0;
    while (i < size && (reinterpret_cast<std::uintptr_t>(in + i) % alignof(std::uint64_t)) != 0) {
        out[i] = std::atomic_ref<unsigned char>(in[i]).load(std::memory_order_relaxed);
        ++i;
    }
    for (; i + sizeof(std::uint64_t) <= size; i += sizeof(std::uint64_t)) {
        auto* word = reinterpret_cast<std::uint64_t*>(in + i);
        const std::uint64_t value = std::atomic_ref<std::uint64_t>(*word).load(std::memory_order_relaxed);
        std::memcpy(out + i, &value, sizeof value);
    }
    for (; i < size; ++i) out[i] = std::atomic_ref<unsigned char>(in[i]).load(std::memory_order_relaxed);
}

}  // namespace llmq::ipc

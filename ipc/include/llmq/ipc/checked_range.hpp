// checked_range: the one place where llmq::ipc decides whether an (offset, length) pair that
// came from shared memory lies inside a real size.
//
// Every offset and length a client writes is hostile: offset may be 2^64 - 32 and
// offset + length may wrap. Callers never add two client values themselves; they ask here, with
// `limit` taken from a size they own (their copy of the layout, the copied payload's size).
#pragma once

#include <cstdint>

namespace llmq::ipc {

// True when [offset, offset + length) lies inside [0, limit). Never overflows: the sum is not
// computed, `length <= limit - offset` is compared once `offset <= limit` is known.
// A zero length at offset == limit is inside (an empty range at the end).
[[nodiscard]] constexpr bool checked_range(std::uint64_t offset, std::uint64_t length,
                                           std::uint64_t limit) {
    return offset <= limit && length <= limit - offset;
}

static_assert(checked_range(0, 0, 0));
static_assert(checked_range(8, 8, 16));
static_assert(!checked_range(8, 9, 16));
static_assert(!checked_range(~std::uint64_t{0} - 31, 64, 4096));
static_assert(!checked_range(32, ~std::uint64_t{0} - 31, 4096));

}  // namespace llmq::ipc

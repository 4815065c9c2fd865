// The region layout is pinned (sizes and offsets), computed geometry is sane, and a client
// refuses any header that does not describe the region it mapped.
#include <doctest/doctest.h>

#include <cstddef>

#include "llmq/ipc/checked_range.hpp"
#include "llmq/ipc/region_layout.hpp"

using namespace llmq::ipc;

// Pinned: changing any of these changes the protocol (bump kProtocolVersion).
static_assert(sizeof(RequestDescriptor) == 64);
static_assert(sizeof(ResponseEvent) == 128);
static_assert(sizeof(RegionHeader) == 128);
static_assert(sizeof(RegionControl) == 576);
static_assert(offsetof(RegionHeader, region_size) == 16);
static_assert(offsetof(RegionHeader, request_slots_offset) == 24);
static_assert(offsetof(RegionHeader, request_capacity) == 32);
static_assert(offsetof(RegionHeader, response_slots_offset) == 40);
static_assert(offsetof(RegionHeader, response_capacity) == 48);
static_assert(offsetof(RegionHeader, arena_offset) == 56);
static_assert(offsetof(RegionHeader, arena_size) == 64);
static_assert(offsetof(ResponseEvent, text_length) == 28);
static_assert(offsetof(ResponseEvent, prompt_tokens) == 32);
static_assert(offsetof(ResponseEvent, generated_tokens) == 36);
static_assert(offsetof(ResponseEvent, prefill_us) == 48);
static_assert(offsetof(ResponseEvent, decode_us) == 56);

TEST_CASE("checked_range refuses offsets near 2^64 and sums that wrap") {
    constexpr std::uint64_t max = ~std::uint64_t{0};
    CHECK(checked_range(0, 4096, 4096));
    CHECK(checked_range(4096, 0, 4096));
    CHECK_FALSE(checked_range(4097, 0, 4096));
    CHECK_FALSE(checked_range(max - 31, 32, 4096));
    CHECK_FALSE(checked_range(max - 31, 64, max));  // offset + length wraps to 32
    CHECK_FALSE(checked_range(64, max - 31, 4096));
    CHECK_FALSE(checked_range(max, 1, max));
    CHECK(checked_range(max - 1, 1, max));
}

TEST_CASE("the default geometry places every part in order, 64-byte aligned, arena page aligned") {
    auto layout = compute_layout(RegionGeometry{});
    REQUIRE(layout.ok());
    CHECK(layout->request_slots_offset == kRegionControlBytes);
    CHECK(layout->response_slots_offset == layout->request_slots_offset + 256 * sizeof(RequestDescriptor));
    CHECK(layout->arena_offset >= layout->response_slots_offset + 4096 * sizeof(ResponseEvent));
    CHECK(layout->arena_offset % 4096 == 0);
    CHECK(layout->arena_offset + layout->arena_size == layout->region_size);
    CHECK(layout->arena_size >= kMinArenaBytes);
}

TEST_CASE("geometry that cannot hold its rings and an arena is refused with the smallest size") {
    RegionGeometry g;
    g.region_size = 64 * 1024;
    auto layout = compute_layout(g);
    REQUIRE_FALSE(layout.ok());
    CHECK(layout.error().code == ErrorCode::invalid_argument);
    CHECK(layout.error().message.find("region_size 65536") != std::string::npos);
}

TEST_CASE("ring capacities that are not powers of two are refused") {
    RegionGeometry g;
    g.request_capacity = 100;
    CHECK_FALSE(compute_layout(g).ok());
    g = RegionGeometry{};
    g.response_capacity = 0;
    CHECK_FALSE(compute_layout(g).ok());
}

TEST_CASE("a client accepts the header the daemon writes and refuses every altered one") {
    auto layout = compute_layout(RegionGeometry{});
    REQUIRE(layout.ok());
    const RegionHeader good = make_header(*layout);
    auto back = layout_from_header(good, layout->region_size);
    REQUIRE(back.ok());
    CHECK(back->arena_offset == layout->arena_offset);
    CHECK(back->arena_size == layout->arena_size);

    auto refused = [&](auto alter, std::uint64_t mapped) {
        RegionHeader h = good;
        alter(h);
        auto r = layout_from_header(h, mapped);
        return !r.ok() && r.error().code == ErrorCode::protocol;
    };
    const std::uint64_t size = layout->region_size;
    CHECK(refused([](RegionHeader& h) { h.magic ^= 1; }, size));
    CHECK(refused([](RegionHeader& h) { h.protocol_version += 1; }, size));
    CHECK(refused([](RegionHeader& h) { h.layout_signature ^= 1; }, size));
    CHECK(refused([](RegionHeader& h) { h.response_event_size = 64; }, size));
    CHECK(refused([](RegionHeader&) {}, size + 4096));  // header and memfd disagree
    CHECK(refused([](RegionHeader& h) { h.arena_size += 1; }, size));
    CHECK(refused([](RegionHeader& h) { h.arena_offset = ~std::uint64_t{0} - 31; }, size));
    CHECK(refused([](RegionHeader& h) { h.response_slots_offset = h.request_slots_offset; }, size));
    CHECK(refused([](RegionHeader& h) { h.request_capacity = 3; }, size));
    CHECK(refused([](RegionHeader& h) { h.request_slots_offset = 0; }, size));
}

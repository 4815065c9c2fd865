#include "llmq/ipc/region_layout.hpp"

#include <string>

#include "llmq/ipc/checked_range.hpp"

namespace llmq::ipc {
namespace {

bool is_power_of_two(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

constexpr std::uint64_t kPage = 4096;

}  // namespace

Result<RegionLayout> compute_layout(const RegionGeometry& g) {
    if (!is_power_of_two(g.request_capacity) || g.request_capacity < 2 || g.request_capacity > 65536) {
        return make_error(ErrorCode::invalid_argument,
                          "region geometry: request_capacity " + std::to_string(g.request_capacity) +
                              " is not a power of two in 2..65536; pick e.g. 256");
    }
    if (!is_power_of_two(g.response_capacity) || g.response_capacity < 2 ||
        g.response_capacity > (1u << 20)) {
        return make_error(ErrorCode::invalid_argument,
                          "region geometry: response_capacity " + std::to_string(g.response_capacity) +
                              " is not a power of two in 2..1048576; pick e.g. 4096");
    }
    RegionLayout layout;
    layout.region_size = g.region_size;
    layout.request_capacity = g.request_capacity;
    layout.response_capacity = g.response_capacity;
    layout.request_slots_offset = kRegionControlBytes;
    layout.response_slots_offset =
        layout.request_slots_offset + std::uint64_t{g.request_capacity} * sizeof(RequestDescriptor);
    layout.arena_offset = round_up(
        layout.response_slots_offset + std::uint64_t{g.response_capacity} * sizeof(ResponseEvent), kPage);
    const std::uint64_t needed = layout.arena_offset + kMinArenaBytes;
    if (g.region_size < needed || g.region_size > kMaxRegionBytes || g.region_size % kPage != 0) {
        return make_error(ErrorCode::invalid_argument,
                          "region geometry: region_size " + std::to_string(g.region_size) +
                              " does not hold " + std::to_string(g.request_capacity) + " request slots, " +
                              std::to_string(g.response_capacity) + " event slots and a " +
                              std::to_string(kMinArenaBytes) + "-byte arena; use a multiple of 4096 from " +
                              std::to_string(round_up(needed, kPage)) + " to " +
                              std::to_string(kMaxRegionBytes));
    }
    layout.arena_size = g.region_size - layout.arena_offset;
    return layout;
}

RegionHeader make_header(const RegionLayout& layout) {
    RegionHeader h{};
    h.magic = kRegionMagic;
    h.protocol_version = kProtocolVersion;
    h.layout_signature = kLayoutSignature;
    h.region_size = layout.region_size;
    h.request_slots_offset = layout.request_slots_offset;
    h.request_capacity = layout.request_capacity;
    h.request_descriptor_size = sizeof(RequestDescriptor);
    h.response_slots_offset = layout.response_slots_offset;
    h.response_capacity = layout.response_capacity;
    h.response_event_size = sizeof(ResponseEvent);
    h.arena_offset = layout.arena_offset;
    h.arena_size = layout.arena_size;
    return h;
}

Result<RegionLayout> layout_from_header(const RegionHeader& h, std::uint64_t mapped_size) {
    auto refuse = [](const std::string& why) {
        return make_error(ErrorCode::protocol, "region header: " + why +
                                                   "; the daemon and this client do not agree on the "
                                                   "region layout (update one of them)");
    };
    if (h.magic != kRegionMagic) return refuse("bad magic");
    if (h.protocol_version != kProtocolVersion) {
        return refuse("protocol version " + std::to_string(h.protocol_version) + ", this client speaks " +
                      std::to_string(kProtocolVersion));
    }
    if (h.layout_signature != kLayoutSignature) {
        return refuse("layout signature " + std::to_string(h.layout_signature) + ", expected " +
                      std::to_string(kLayoutSignature));
    }
    if (h.request_descriptor_size != sizeof(RequestDescriptor) ||
        h.response_event_size != sizeof(ResponseEvent)) {
        return refuse("record sizes " + std::to_string(h.request_descriptor_size) + "/" +
                      std::to_string(h.response_event_size) + ", expected " +
                      std::to_string(sizeof(RequestDescriptor)) + "/" + std::to_string(sizeof(ResponseEvent)));
    }
    if (h.region_size != mapped_size) {
        return refuse("region_size " + std::to_string(h.region_size) + " but the memfd holds " +
                      std::to_string(mapped_size) + " bytes");
    }
    if (!is_power_of_two(h.request_capacity) || !is_power_of_two(h.response_capacity)) {
        return refuse("ring capacities are not powers of two");
    }
    const std::uint64_t request_bytes = std::uint64_t{h.request_capacity} * sizeof(RequestDescriptor);
    const std::uint64_t response_bytes = std::uint64_t{h.response_capacity} * sizeof(ResponseEvent);
    // Parts in order, each after the previous one, all inside the mapping.
    if (h.request_slots_offset < kRegionControlBytes ||
        !checked_range(h.request_slots_offset, request_bytes, mapped_size) ||
        h.response_slots_offset < h.request_slots_offset + request_bytes ||
        !checked_range(h.response_slots_offset, response_bytes, mapped_size) ||
        h.arena_offset < h.response_slots_offset + response_bytes ||
        !checked_range(h.arena_offset, h.arena_size, mapped_size) ||
        h.request_slots_offset % 64 != 0 || h.response_slots_offset % 64 != 0) {
        return refuse("parts overlap or lie outside the " + std::to_string(mapped_size) + "-byte region");
    }
    RegionLayout layout;
    layout.region_size = h.region_size;
    layout.request_slots_offset = h.request_slots_offset;
    layout.request_capacity = h.request_capacity;
    layout.response_slots_offset = h.response_slots_offset;
    layout.response_capacity = h.response_capacity;
    layout.arena_offset = h.arena_offset;
    layout.arena_size = h.arena_size;
    return layout;
}

}  // namespace llmq::ipc

// A hostile client thread rewrites descriptor fields, payload bytes and its ring index while the
// daemon decodes: the daemon never crashes, and every request it accepts still satisfies every
// check, because it validated a private copy it read once.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "llmq/ipc/request_decoder.hpp"
#include "llmq/ipc/request_payload.hpp"
#include "llmq/ipc/server_region.hpp"

using namespace llmq::ipc;

namespace {

template <typename T>
void store(T* where, T value) {
    std::atomic_ref<T>(*where).store(value, std::memory_order_relaxed);
}

// Every property the decoder promises about an accepted generate request.
bool satisfies_limits(const DecodedRequest& d, const DecodeLimits& l) {
    if (d.request_id == 0) return false;
    if (d.kind != RequestKind::generate) return d.kind == RequestKind::ping || d.kind == RequestKind::cancel;
    const GenerateRequest& g = d.generate;
    const SamplingParams& s = g.sampling;
    if (!std::isfinite(s.temperature) || s.temperature < 0 || s.temperature > 100) return false;
    if (!std::isfinite(s.top_p) || s.top_p < 0 || s.top_p > 1) return false;
    if (!std::isfinite(s.min_p) || s.min_p < 0 || s.min_p > 1) return false;
    if (!(s.repetition_penalty > 0) || s.repetition_penalty > 100) return false;
    if (s.top_k < 0 || s.penalty_last_n < -1 || g.max_tokens < 0 || g.max_tokens > l.max_new_tokens) return false;
    if (g.stop.size() > l.max_stop_strings) return false;
    for (const auto& stop : g.stop) {
        if (stop.empty() || stop.size() > l.max_stop_bytes || !is_valid_utf8(stop.data(), stop.size())) return false;
    }
    if (g.prompt_is_tokens) {
        for (std::int32_t t : g.prompt_tokens) {
            if (t < 0 || static_cast<std::uint32_t>(t) >= l.vocab_size) return false;
        }
        return !g.prompt_tokens.empty();
    }
    return is_valid_utf8(g.prompt_text.data(), g.prompt_text.size()) && g.prompt_text.size() <= l.max_prompt_bytes;
}

}  // namespace

TEST_CASE("descriptor and payload rewrites during decoding give defects, never a crash or a bad request") {
    RegionGeometry geometry;
    geometry.request_capacity = 64;
    geometry.response_capacity = 64;
    geometry.region_size = 256u << 10;
    auto created = ServerRegion::create(geometry);
    REQUIRE(created.ok());
    std::shared_ptr<ServerRegion> server = *created;
    const RegionLayout layout = server->layout();
    // The hostile client's own mapping of the same memfd.
    void* raw = ::mmap(nullptr, layout.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, server->memfd(), 0);
    REQUIRE(raw != MAP_FAILED);
    auto* base = static_cast<std::byte*>(raw);
    auto* control = reinterpret_cast<RegionControl*>(base);
    auto* slots = reinterpret_cast<RequestDescriptor*>(base + layout.request_slots_offset);
    std::byte* arena = base + layout.arena_offset;

    // Valid payloads to start from, one per slot, 1 KiB apart.
    GenerateRequest r;
    r.prompt_text = "the quick brown fox, naïve café";
    r.stop = {"fox", "END"};
    std::vector<std::byte> payload;
    REQUIRE(encode_generate_payload(r, payload).ok());
    for (std::uint32_t i = 0; i < geometry.request_capacity; ++i) {
        std::memcpy(arena + i * 1024, payload.data(), payload.size());
        slots[i] = RequestDescriptor{i + 1, i * 1024ull, payload.size(), 1, 0, {}};
    }

    DecodeLimits limits;
    limits.vocab_size = 1000;
    std::atomic<bool> stop{false};
    std::thread hostile([&] {
        std::mt19937_64 rng(12345);
        const std::uint64_t specials[] = {0, 1, 7, payload.size(), layout.arena_size, layout.arena_size - 8,
                                          ~std::uint64_t{0} - 31, ~std::uint64_t{0}, 1ull << 63};
        while (!stop.load(std::memory_order_relaxed)) {
            // Keep the ring full so the daemon keeps decoding. tail + capacity never goes
            // backwards and never runs more than capacity ahead of the daemon's tail.
            const std::uint64_t tail = std::atomic_ref<std::uint64_t>(control->request_tail.value).load(std::memory_order_acquire);
            std::atomic_ref<std::uint64_t>(control->request_head.value)
                .store(tail + geometry.request_capacity, std::memory_order_release);
            for (int k = 0; k < 16; ++k) {
                RequestDescriptor* d = &slots[rng() % geometry.request_capacity];
                switch (rng() % 6) {
                    case 0: store(&d->payload_offset, specials[rng() % std::size(specials)]); break;
                    case 1: store(&d->payload_length, specials[rng() % std::size(specials)]); break;
                    case 2: store(&d->kind, static_cast<std::uint32_t>(rng() % 5)); break;
                    case 3: store(&d->request_id, rng() % 3); break;
                    case 4: store(&d->payload_offset, (rng() % geometry.request_capacity) * 1024); break;
                    default: store(&d->payload_length, static_cast<std::uint64_t>(payload.size())); break;
                }
                auto* byte = reinterpret_cast<unsigned char*>(arena + (rng() % geometry.request_capacity) * 1024 +
                                                              rng() % payload.size());
                store(byte, static_cast<unsigned char>(rng()));
            }
        }
    });

    std::uint64_t accepted = 0, refused = 0, bad = 0;
    std::vector<PolledRequest> polled;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    while (std::chrono::steady_clock::now() < until && !server->faulted()) {
        polled.clear();
        server->poll(limits, polled, 32);
        for (const auto& result : polled) {
            if (const auto* d = std::get_if<DecodedRequest>(&result)) {
                ++accepted;
                if (!satisfies_limits(*d, limits)) ++bad;
            } else {
                const auto& defect = std::get<RequestDefect>(result);
                CHECK_FALSE(defect.field.empty());
                ++refused;
            }
        }
    }
    stop = true;
    hostile.join();
    ::munmap(raw, layout.region_size);
    MESSAGE("accepted " << accepted << ", refused " << refused);
    CHECK_FALSE(server->faulted());  // the hostile index always stayed plausible
    CHECK(bad == 0);
    CHECK(accepted > 0);
    CHECK(refused > 0);
}

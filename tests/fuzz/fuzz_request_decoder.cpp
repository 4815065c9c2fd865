// libFuzzer target: the request decoder (ipc/src/request_decoder.cpp) on hostile descriptors
// and arenas. Every accepted request must satisfy the limits it was decoded against; anything
// else must come back as a defect naming a field. A crash, a sanitizer report or a violated
// promise (__builtin_trap) is a finding.
//
// The first input byte picks how the rest is used:
//   0: raw descriptor (64 bytes) then the arena;
//   1: the arena only, with a generate descriptor covering all of it (exercises the payload);
//   2: a valid generate payload built from the input, then (position, xor) byte patches.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "llmq/ipc/request_decoder.hpp"
#include "llmq/ipc/request_payload.hpp"

using namespace llmq::ipc;

namespace {

void check(bool promise) {
    if (!promise) __builtin_trap();
}

void check_result(const PolledRequest& result, const DecodeLimits& limits) {
    if (const auto* defect = std::get_if<RequestDefect>(&result)) {
        check(!defect->field.empty());
        check(defect->message.find(defect->field) != std::string::npos);
        return;
    }
    const auto& d = std::get<DecodedRequest>(result);
    check(d.request_id != 0);
    if (d.kind != RequestKind::generate) return;
    const GenerateRequest& g = d.generate;
    const SamplingParams& s = g.sampling;
    check(std::isfinite(s.temperature) && s.temperature >= 0 && s.temperature <= 100);
    check(std::isfinite(s.top_p) && s.top_p >= 0 && s.top_p <= 1);
    check(std::isfinite(s.min_p) && s.min_p >= 0 && s.min_p <= 1);
    check(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0);
    check(std::isfinite(s.presence_penalty) && std::isfinite(s.frequency_penalty));
    check(s.top_k >= 0 && s.penalty_last_n >= -1);
    check(g.max_tokens >= 0 && g.max_tokens <= limits.max_new_tokens);
    check(g.stop.size() <= limits.max_stop_strings);
    for (const auto& stop : g.stop) {
        check(!stop.empty() && stop.size() <= limits.max_stop_bytes);
        check(is_valid_utf8(stop.data(), stop.size()));
    }
    if (g.prompt_is_tokens) {
        check(!g.prompt_tokens.empty() && g.prompt_tokens.size() <= limits.max_prompt_tokens);
        for (std::int32_t t : g.prompt_tokens) check(t >= 0 && static_cast<std::uint32_t>(t) < limits.vocab_size);
    } else {
        check(g.prompt_text.size() <= limits.max_prompt_bytes);
        check(is_valid_utf8(g.prompt_text.data(), g.prompt_text.size()));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    DecodeLimits limits;
    limits.vocab_size = 1000;
    limits.max_prompt_tokens = 512;
    limits.max_prompt_bytes = 4096;
    limits.max_new_tokens = 2048;
    const std::uint8_t mode = data[0] % 3;
    ++data;
    --size;

    RequestDescriptor descriptor{};
    std::vector<std::byte> arena;
    if (mode == 0) {
        if (size < sizeof descriptor) return 0;
        std::memcpy(&descriptor, data, sizeof descriptor);
        arena.assign(reinterpret_cast<const std::byte*>(data) + sizeof descriptor,
                     reinterpret_cast<const std::byte*>(data) + size);
    } else if (mode == 1) {
        arena.assign(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
        descriptor.request_id = 1;
        descriptor.kind = static_cast<std::uint32_t>(RequestKind::generate);
        descriptor.payload_length = arena.size();
    } else {
        // A valid request whose text and stop strings come from the input, then patches.
        if (size == 0) return 0;
        const std::size_t text = std::min<std::size_t>(size, data[0] % 64);
        GenerateRequest r;
        r.prompt_text.assign(reinterpret_cast<const char*>(data), text);
        if (size > text + 4) r.stop.emplace_back(reinterpret_cast<const char*>(data + text), 4);
        r.prompt_is_tokens = size > 2 && (data[1] & 1);
        if (r.prompt_is_tokens) r.prompt_tokens = {1, 2, 3, static_cast<std::int32_t>(data[2])};
        if (!encode_generate_payload(r, arena).ok()) return 0;
        for (std::size_t i = text; i + 1 < size; i += 2) {
            const std::size_t at = data[i] % arena.size();
            arena[at] ^= static_cast<std::byte>(data[i + 1]);
        }
        descriptor.request_id = 2;
        descriptor.kind = static_cast<std::uint32_t>(RequestKind::generate);
        descriptor.payload_length = arena.size();
    }
    check_result(decode_request(descriptor, ArenaView{arena.data(), arena.size()}, limits), limits);
    return 0;
}

#include "llmq/ipc/request_payload.hpp"

#include <cstring>
#include <limits>
#include <string>

namespace llmq::ipc {
namespace {

constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();

template <typename T>
void put(std::vector<std::byte>& out, T value) {
    const std::size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

void put_bytes(std::vector<std::byte>& out, const void* data, std::size_t size) {
    const std::size_t at = out.size();
    out.resize(at + size);
    if (size != 0) std::memcpy(out.data() + at, data, size);
}

}  // namespace

Result<std::uint64_t> generate_payload_size(const GenerateRequest& r) {
    const std::uint64_t prompt_count = r.prompt_is_tokens ? r.prompt_tokens.size() : r.prompt_text.size();
    if (prompt_count > kU32Max) {
        return make_error(ErrorCode::invalid_argument,
                          "generate request: prompt of " + std::to_string(prompt_count) +
                              (r.prompt_is_tokens ? " tokens" : " bytes") + " does not fit the protocol");
    }
    if (r.stop.size() > kU32Max) {
        return make_error(ErrorCode::invalid_argument, "generate request: too many stop strings");
    }
    std::uint64_t size = kPayloadFixedBytes +
                         (r.prompt_is_tokens ? prompt_count * sizeof(std::int32_t) : prompt_count);
    for (const std::string& s : r.stop) {
        if (s.size() > kU32Max) {
            return make_error(ErrorCode::invalid_argument, "generate request: a stop string is too long");
        }
        size += sizeof(std::uint32_t) + s.size();
    }
    if (!r.images.empty()) {
        if (r.images.size() > kU32Max) return make_error(ErrorCode::invalid_argument, "generate request: too many images");
        size += sizeof(std::uint32_t);
        for (const auto& image : r.images) {
            if (image.size() > kU32Max)
                return make_error(ErrorCode::invalid_argument, "generate request: an image of " +
                                                                   std::to_string(image.size()) + " bytes is over 4 GiB");
            size += sizeof(std::uint32_t) + image.size();
        }
    }
    return size;
}

Result<void> encode_generate_payload(const GenerateRequest& r, std::vector<std::byte>& out) {
    auto size = generate_payload_size(r);
    if (!size) return size.error();
    out.reserve(out.size() + *size);

    std::uint32_t flags = 0;
    if (r.add_bos) flags |= kPayloadAddBos;
    if (r.ignore_eos) flags |= kPayloadIgnoreEos;
    if (r.logprobs) flags |= kPayloadLogprobs;
    if (r.sampling.seed_set) flags |= kPayloadSeedSet;
    if (r.prompt_is_tokens) flags |= kPayloadPromptIsTokens;
    if (!r.images.empty()) flags |= kPayloadHasImages;

    put<std::uint32_t>(out, kPayloadVersion);
    put<std::uint32_t>(out, flags);
    put<float>(out, r.sampling.temperature);
    put<float>(out, r.sampling.top_p);
    put<float>(out, r.sampling.min_p);
    put<float>(out, r.sampling.repetition_penalty);
    put<float>(out, r.sampling.presence_penalty);
    put<float>(out, r.sampling.frequency_penalty);
    put<std::int32_t>(out, r.sampling.top_k);
    put<std::int32_t>(out, r.sampling.penalty_last_n);
    put<std::int32_t>(out, r.max_tokens);
    put<std::int32_t>(out, r.priority);
    put<std::uint64_t>(out, r.sampling.seed);
    if (r.prompt_is_tokens) {
        put<std::uint32_t>(out, static_cast<std::uint32_t>(r.prompt_tokens.size()));
    } else {
        put<std::uint32_t>(out, static_cast<std::uint32_t>(r.prompt_text.size()));
    }
    put<std::uint32_t>(out, static_cast<std::uint32_t>(r.stop.size()));
    if (r.prompt_is_tokens) {
        put_bytes(out, r.prompt_tokens.data(), r.prompt_tokens.size() * sizeof(std::int32_t));
    } else {
        put_bytes(out, r.prompt_text.data(), r.prompt_text.size());
    }
    for (const std::string& s : r.stop) {
        put<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
        put_bytes(out, s.data(), s.size());
    }
    if (!r.images.empty()) {
        put<std::uint32_t>(out, static_cast<std::uint32_t>(r.images.size()));
        for (const auto& image : r.images) {
            put<std::uint32_t>(out, static_cast<std::uint32_t>(image.size()));
            put_bytes(out, image.data(), image.size());
        }
    }
    return {};
}

}  // namespace llmq::ipc

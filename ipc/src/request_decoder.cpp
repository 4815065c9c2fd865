#include "llmq/ipc/request_decoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "llmq/ipc/checked_range.hpp"
#include "llmq/ipc/request_payload.hpp"
#include "llmq/ipc/shared_copy.hpp"

namespace llmq::ipc {
namespace {

RequestDefect defect(std::uint64_t id, std::string field, const std::string& why) {
    RequestDefect d;
    d.request_id = id;
    d.message = "request " + std::to_string(id) + ": " + field + " " + why;
    d.field = std::move(field);
    return d;
}

std::string show(float v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return std::to_string(v);
}

// Reads fixed-width fields in order from a private copy; every step is one checked_range.
class PayloadReader {
public:
    PayloadReader(const std::byte* data, std::uint64_t size) : data_(data), size_(size) {}

    bool take(void* out, std::uint64_t n) {
        if (!checked_range(pos_, n, size_)) return false;
        if (n != 0) std::memcpy(out, data_ + pos_, n);
        pos_ += n;
        return true;
    }
    // A view of the next n bytes (still inside the private copy), or nullptr.
    const std::byte* view(std::uint64_t n) {
        if (!checked_range(pos_, n, size_)) return nullptr;
        const std::byte* p = data_ + pos_;
        pos_ += n;
        return p;
    }
    std::uint64_t remaining() const { return size_ - pos_; }

private:
    const std::byte* data_;
    std::uint64_t size_;
    std::uint64_t pos_ = 0;
};

struct FixedFields {
    std::uint32_t version, flags;
    float temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
    std::int32_t top_k, penalty_last_n, max_tokens, priority;
    std::uint64_t seed;
    std::uint32_t prompt_length, stop_count;
};

bool read_fixed(PayloadReader& r, FixedFields& f) {
    return r.take(&f.version, 4) && r.take(&f.flags, 4) && r.take(&f.temperature, 4) &&
           r.take(&f.top_p, 4) && r.take(&f.min_p, 4) && r.take(&f.repetition_penalty, 4) &&
           r.take(&f.presence_penalty, 4) && r.take(&f.frequency_penalty, 4) && r.take(&f.top_k, 4) &&
           r.take(&f.penalty_last_n, 4) && r.take(&f.max_tokens, 4) && r.take(&f.priority, 4) &&
           r.take(&f.seed, 8) && r.take(&f.prompt_length, 4) && r.take(&f.stop_count, 4);
}

// A float field must be finite and inside [lo, hi] (lo_open: strictly above lo).
bool float_in(float v, float lo, float hi, bool lo_open = false) {
    if (!std::isfinite(v)) return false;
    if (lo_open ? !(v > lo) : !(v >= lo)) return false;
    return v <= hi;
}

constexpr std::int32_t kMaxTopK = 1 << 24;
constexpr std::int32_t kMaxPenaltyWindow = 1 << 24;
constexpr std::int32_t kMaxPriority = 1000;

}  // namespace

bool is_valid_utf8(const char* text, std::size_t size, std::size_t* bad_offset) {
    const auto* s = reinterpret_cast<const unsigned char*>(text);
    std::size_t i = 0;
    auto fail = [&](std::size_t at) {
        if (bad_offset) *bad_offset = at;
        return false;
    };
    while (i < size) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n;
        std::uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return fail(i);  // continuation byte, overlong lead (c0, c1) or beyond f4
        }
        if (size - i <= n) return fail(i);
        for (std::size_t k = 1; k <= n; ++k) {
            if ((s[i + k] & 0xc0) != 0x80) return fail(i);
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return fail(i);
        }
        i += n + 1;
    }
    return true;
}

PolledRequest decode_generate_payload(std::uint64_t id, const std::byte* bytes, std::uint64_t size,
                                      const DecodeLimits& limits) {
    PayloadReader reader(bytes, size);
    FixedFields f{};
    if (!read_fixed(reader, f)) {
        return defect(id, "payload_length",
                      std::to_string(size) + " is shorter than the " + std::to_string(kPayloadFixedBytes) +
                          "-byte fixed part of a generate payload");
    }
    if (f.version != kPayloadVersion) {
        return defect(id, "payload_version",
                      std::to_string(f.version) + " is not supported; this daemon reads version " +
                          std::to_string(kPayloadVersion));
    }
    if ((f.flags & ~kPayloadKnownFlags) != 0) {
        return defect(id, "payload.flags", "has unknown bits set (" + std::to_string(f.flags) + ")");
    }

    DecodedRequest out;
    out.request_id = id;
    out.kind = RequestKind::generate;
    GenerateRequest& g = out.generate;
    SamplingParams& s = g.sampling;

    if (!float_in(f.temperature, 0.0f, 100.0f)) {
        return defect(id, "sampling.temperature", "is " + show(f.temperature) + "; send a finite value from 0 to 100");
    }
    if (!float_in(f.top_p, 0.0f, 1.0f)) {
        return defect(id, "sampling.top_p", "is " + show(f.top_p) + "; send a finite value from 0 to 1");
    }
    if (!float_in(f.min_p, 0.0f, 1.0f)) {
        return defect(id, "sampling.min_p", "is " + show(f.min_p) + "; send a finite value from 0 to 1");
    }
    if (!float_in(f.repetition_penalty, 0.0f, 100.0f, true)) {
        return defect(id, "sampling.repetition_penalty",
                      "is " + show(f.repetition_penalty) + "; send a finite value above 0, at most 100 (1 = off)");
    }
    if (!float_in(f.presence_penalty, -100.0f, 100.0f)) {
        return defect(id, "sampling.presence_penalty",
                      "is " + show(f.presence_penalty) + "; send a finite value from -100 to 100");
    }
    if (!float_in(f.frequency_penalty, -100.0f, 100.0f)) {
        return defect(id, "sampling.frequency_penalty",
                      "is " + show(f.frequency_penalty) + "; send a finite value from -100 to 100");
    }
    if (f.top_k < 0 || f.top_k > kMaxTopK) {
        return defect(id, "sampling.top_k",
                      "is " + std::to_string(f.top_k) + "; send 0 (off) to " + std::to_string(kMaxTopK));
    }
    if (f.penalty_last_n < -1 || f.penalty_last_n > kMaxPenaltyWindow) {
        return defect(id, "sampling.penalty_last_n",
                      "is " + std::to_string(f.penalty_last_n) + "; send -1 (whole context) to " +
                          std::to_string(kMaxPenaltyWindow));
    }
    if (f.max_tokens < 0 || f.max_tokens > limits.max_new_tokens) {
        return defect(id, "max_tokens",
                      "is " + std::to_string(f.max_tokens) + "; send 0 (the daemon's limit) to " +
                          std::to_string(limits.max_new_tokens));
    }
    if (f.priority < -kMaxPriority || f.priority > kMaxPriority) {
        return defect(id, "priority", "is " + std::to_string(f.priority) + "; send -1000 to 1000");
    }
    s.temperature = f.temperature;
    s.top_p = f.top_p;
    s.min_p = f.min_p;
    s.repetition_penalty = f.repetition_penalty;
    s.presence_penalty = f.presence_penalty;
    s.frequency_penalty = f.frequency_penalty;
    s.top_k = f.top_k;
    s.penalty_last_n = f.penalty_last_n;
    s.seed = f.seed;
    s.seed_set = (f.flags & kPayloadSeedSet) != 0;
    g.max_tokens = f.max_tokens;
    g.priority = f.priority;
    g.add_bos = (f.flags & kPayloadAddBos) != 0;
    g.ignore_eos = (f.flags & kPayloadIgnoreEos) != 0;
    g.logprobs = (f.flags & kPayloadLogprobs) != 0;
    g.prompt_is_tokens = (f.flags & kPayloadPromptIsTokens) != 0;

    if (g.prompt_is_tokens) {
        if (limits.vocab_size == 0) {
            return defect(id, "prompt_tokens", "cannot be checked: no model is loaded yet; send text or retry");
        }
        if (f.prompt_length == 0) return defect(id, "prompt_length", "is 0; send at least one token id");
        if (f.prompt_length > limits.max_prompt_tokens) {
            return defect(id, "prompt_length",
                          "is " + std::to_string(f.prompt_length) + " tokens; the limit is " +
                              std::to_string(limits.max_prompt_tokens));
        }
        if (f.prompt_length > reader.remaining() / sizeof(std::int32_t)) {
            return defect(id, "prompt_length",
                          "says " + std::to_string(f.prompt_length) + " token ids but only " +
                              std::to_string(reader.remaining()) + " payload bytes follow");
        }
        const std::byte* ids = reader.view(std::uint64_t{f.prompt_length} * sizeof(std::int32_t));
        g.prompt_tokens.resize(f.prompt_length);
        std::memcpy(g.prompt_tokens.data(), ids, g.prompt_tokens.size() * sizeof(std::int32_t));
        const bool images = (f.flags & kPayloadHasImages) != 0;
        for (std::size_t i = 0; i < g.prompt_tokens.size(); ++i) {
            const std::int32_t t = g.prompt_tokens[i];
            if (t == kImagePromptToken && images) continue;  // an image's place, counted below
            if (t < 0 || static_cast<std::uint32_t>(t) >= limits.vocab_size) {
                return defect(id, "prompt_tokens[" + std::to_string(i) + "]",
                              "is " + std::to_string(t) + "; the vocabulary has ids 0 to " +
                                  std::to_string(limits.vocab_size - 1));
            }
        }
    } else {
        if (f.prompt_length > limits.max_prompt_bytes) {
            return defect(id, "prompt_length",
                          "is " + std::to_string(f.prompt_length) + " bytes; the limit is " +
                              std::to_string(limits.max_prompt_bytes));
        }
        const std::byte* text = reader.view(f.prompt_length);
        if (text == nullptr) {
            return defect(id, "prompt_length",
                          "says " + std::to_string(f.prompt_length) + " bytes but only " +
                              std::to_string(reader.remaining()) + " payload bytes follow");
        }
        if (f.prompt_length == 0 && !g.add_bos) {
            return defect(id, "prompt", "is empty and add_bos is off; send text, token ids or set add_bos");
        }
        std::size_t bad = 0;
        if (!is_valid_utf8(reinterpret_cast<const char*>(text), f.prompt_length, &bad)) {
            return defect(id, "prompt", "is not valid UTF-8 (byte " + std::to_string(bad) + ")");
        }
        g.prompt_text.assign(reinterpret_cast<const char*>(text), f.prompt_length);
    }

    if (f.stop_count > limits.max_stop_strings) {
        return defect(id, "stop_count",
                      "is " + std::to_string(f.stop_count) + "; at most " +
                          std::to_string(limits.max_stop_strings) + " stop strings are allowed");
    }
    g.stop.reserve(f.stop_count);
    for (std::uint32_t i = 0; i < f.stop_count; ++i) {
        const std::string field = "stop[" + std::to_string(i) + "]";
        std::uint32_t length = 0;
        if (!reader.take(&length, sizeof length)) {
            return defect(id, field, "is missing: the payload ends before its length");
        }
        if (length == 0 || length > limits.max_stop_bytes) {
            return defect(id, field,
                          "is " + std::to_string(length) + " bytes long; send 1 to " +
                              std::to_string(limits.max_stop_bytes));
        }
        const std::byte* text = reader.view(length);
        if (text == nullptr) {
            return defect(id, field,
                          "says " + std::to_string(length) + " bytes but only " +
                              std::to_string(reader.remaining()) + " payload bytes follow");
        }
        std::size_t bad = 0;
        if (!is_valid_utf8(reinterpret_cast<const char*>(text), length, &bad)) {
            return defect(id, field, "is not valid UTF-8 (byte " + std::to_string(bad) + ")");
        }
        g.stop.emplace_back(reinterpret_cast<const char*>(text), length);
    }
    if (f.flags & kPayloadHasImages) {
        std::uint32_t count = 0;
        if (!reader.take(&count, sizeof count)) return defect(id, "image_count", "is missing: the payload ends first");
        if (limits.max_images == 0) return defect(id, "images", "are not taken: the model has no vision projector");
        if (count == 0 || count > limits.max_images)
            return defect(id, "image_count", "is " + std::to_string(count) + "; send 1 to " +
                                                 std::to_string(limits.max_images) + " ([ipc] max_images)");
        std::uint64_t total = 0;
        for (std::uint32_t i = 0; i < count; ++i) {
            const std::string field = "images[" + std::to_string(i) + "]";
            std::uint32_t length = 0;
            if (!reader.take(&length, sizeof length)) return defect(id, field, "is missing: the payload ends before its length");
            total += length;
            if (length == 0 || total > limits.max_image_bytes)
                return defect(id, field, "is " + std::to_string(length) + " bytes, the images together " +
                                             std::to_string(total) + "; at most " + std::to_string(limits.max_image_bytes) +
                                             " in all ([ipc] max_image_bytes)");
            const std::byte* bytes = reader.view(length);
            if (bytes == nullptr)
                return defect(id, field, "says " + std::to_string(length) + " bytes but only " +
                                             std::to_string(reader.remaining()) + " payload bytes follow");
            const auto* p = reinterpret_cast<const std::uint8_t*>(bytes);
            g.images.emplace_back(p, p + length);
        }
        if (g.prompt_is_tokens) {
            const auto marks = std::count(g.prompt_tokens.begin(), g.prompt_tokens.end(), kImagePromptToken);
            if (marks != static_cast<std::ptrdiff_t>(count))
                return defect(id, "prompt_tokens", "hold " + std::to_string(marks) + " image marks (" +
                                                       std::to_string(kImagePromptToken) + ") for " +
                                                       std::to_string(count) + " image(s); put one where each image goes");
        }
    }
    if (reader.remaining() != 0) {
        return defect(id, "payload_length",
                      "leaves " + std::to_string(reader.remaining()) + " bytes after the last stop string");
    }
    return out;
}

PolledRequest decode_request(const RequestDescriptor& d, ArenaView arena, const DecodeLimits& limits) {
    const std::uint64_t id = d.request_id;
    if (id == 0) return defect(0, "request_id", "is 0, which is reserved; number requests from 1");
    if (d.flags != 0) {
        return defect(id, "flags", "is " + std::to_string(d.flags) + "; protocol 1 defines no descriptor flags");
    }
    switch (d.kind) {
        case static_cast<std::uint32_t>(RequestKind::cancel):
        case static_cast<std::uint32_t>(RequestKind::ping): {
            if (d.payload_length != 0) {
                return defect(id, "payload_length",
                              "is " + std::to_string(d.payload_length) + "; cancel and ping carry no payload");
            }
            DecodedRequest out;
            out.request_id = id;
            out.kind = static_cast<RequestKind>(d.kind);
            return out;
        }
        case static_cast<std::uint32_t>(RequestKind::generate): break;
        default:
            return defect(id, "kind", "is " + std::to_string(d.kind) + "; expected 1 (generate), 2 (cancel) or 3 (ping)");
    }
    if (d.payload_length > limits.max_payload_bytes) {
        return defect(id, "payload_length",
                      "is " + std::to_string(d.payload_length) + " bytes; the limit is " +
                          std::to_string(limits.max_payload_bytes) +
                          (limits.max_payload_why.empty() ? "" : " (" + limits.max_payload_why + ")"));
    }
    if (!checked_range(d.payload_offset, d.payload_length, arena.size)) {
        const bool offset_outside = d.payload_offset > arena.size;
        return defect(id, offset_outside ? "payload_offset" : "payload_length",
                      "puts the payload (offset " + std::to_string(d.payload_offset) + ", length " +
                          std::to_string(d.payload_length) + ") outside the " + std::to_string(arena.size) +
                          "-byte arena");
    }
    std::vector<std::byte> copy(d.payload_length);
    copy_from_shared(copy.data(), arena.base + d.payload_offset, copy.size());
    return decode_generate_payload(id, copy.data(), copy.size(), limits);
}

}  // namespace llmq::ipc

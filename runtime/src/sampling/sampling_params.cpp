// validate(SamplingParams): the one place sampling values are judged.
#include <cmath>
#include <sstream>

#include "llmq/runtime/sampler.hpp"

namespace llmq {

namespace {

std::string show(float v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    std::ostringstream out;
    out << v;
    return out.str();
}

Status bad(std::string_view field, const std::string& value, std::string_view rule) {
    return invalid_argument("sampling parameter " + std::string(field) + " = " + value +
                            ": must be " + std::string(rule));
}

Status check_real(std::string_view field, float v, float lo, float hi, std::string_view rule) {
    if (std::isfinite(v) && v >= lo && v <= hi) return Status::ok_status();
    return bad(field, show(v), rule);
}

Status check_integer(std::string_view field, int64_t v, int64_t lo, int64_t hi,
                   std::string_view meaning = "") {
    if (v >= lo && v <= hi) return Status::ok_status();
    return bad(field, std::to_string(v),
               "between " + std::to_string(lo) + " and " + std::to_string(hi) +
                   std::string(meaning));
}

// Well-formed UTF-8: no stray continuation bytes, no overlong forms, no surrogates, nothing
// above U+10FFFF.
bool is_valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t length;
        uint32_t code;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            length = 2;
            code = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            length = 3;
            code = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            length = 4;
            code = c & 0x07;
        } else {
            return false;
        }
        if (i + length > s.size()) return false;
        for (size_t j = 1; j < length; ++j) {
            const auto next = static_cast<unsigned char>(s[i + j]);
            if ((next & 0xC0) != 0x80) return false;
            code = (code << 6) | (next & 0x3F);
        }
        static constexpr uint32_t kSmallest[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false;
        i += length;
    }
    return true;
}

}  // namespace

Status validate(const SamplingParams& p) {
    LLMQ_TRY(check_real("temperature", p.temperature, 0.0f, 100.0f,
                         "a finite number between 0 and 100 (0 = greedy)"));
    LLMQ_TRY(check_integer("top_k", p.top_k, 0, SamplingLimits::top_k, " (0 = off)"));
    LLMQ_TRY(check_real("top_p", p.top_p, 0.0f, 1.0f, "a finite number between 0 and 1 (1 = off)"));
    LLMQ_TRY(check_real("min_p", p.min_p, 0.0f, 1.0f, "a finite number between 0 and 1 (0 = off)"));
    if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f &&
          p.repetition_penalty <= 100.0f))
        return bad("repetition_penalty", show(p.repetition_penalty),
                   "a finite number greater than 0 and at most 100 (1 = off)");
    LLMQ_TRY(check_real("presence_penalty", p.presence_penalty, -100.0f, 100.0f,
                         "a finite number between -100 and 100 (0 = off)"));
    LLMQ_TRY(check_real("frequency_penalty", p.frequency_penalty, -100.0f, 100.0f,
                         "a finite number between -100 and 100 (0 = off)"));
    LLMQ_TRY(check_integer("penalty_last_n", p.penalty_last_n, -1, SamplingLimits::penalty_last_n,
                         " (0 = off, -1 = every token given)"));
    LLMQ_TRY(check_integer("max_tokens", p.max_tokens, 1, SamplingLimits::max_tokens));
    LLMQ_TRY(check_integer("logprobs", p.logprobs, 0, SamplingLimits::logprobs, " (0 = off)"));
    if (p.stop.size() > SamplingLimits::stop_strings)
        return bad("stop", std::to_string(p.stop.size()) + " strings",
                   "at most " + std::to_string(SamplingLimits::stop_strings) + " strings");
    for (size_t i = 0; i < p.stop.size(); ++i) {
        const std::string& stop = p.stop[i];
        const std::string field = "stop[" + std::to_string(i) + "]";
        if (stop.empty() || stop.size() > SamplingLimits::stop_string_bytes)
            return bad(field, std::to_string(stop.size()) + " bytes",
                       "1 to " + std::to_string(SamplingLimits::stop_string_bytes) + " bytes");
        if (!is_valid_utf8(stop)) return bad(field, "(not shown)", "valid UTF-8");
    }
    return Status::ok_status();
}

}  // namespace llmq

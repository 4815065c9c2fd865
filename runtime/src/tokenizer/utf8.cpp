#include "utf8.hpp"

namespace llmq::utf8 {

namespace {

// Table 3-7 of the Unicode standard (well-formed byte sequences): the range allowed for the
// second byte depends on the lead byte; later bytes are always 80..BF.
struct LeadRule {
    size_t length;
    unsigned char second_low;
    unsigned char second_high;
};

LeadRule lead_rule(unsigned char b) {
    if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
    if (b == 0xE0) return {3, 0xA0, 0xBF};
    if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
    if (b == 0xED) return {3, 0x80, 0x9F};
    if (b == 0xF0) return {4, 0x90, 0xBF};
    if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
    if (b == 0xF4) return {4, 0x80, 0x8F};
    return {0, 0, 0};
}

}  // namespace

Step step(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const unsigned char lead = p[0];
    if (lead < 0x80) return {StepKind::complete, 1, lead};
    const LeadRule rule = lead_rule(lead);
    if (rule.length == 0) return {StepKind::invalid, 1, 0};

    char32_t cp = lead & (rule.length == 2 ? 0x1F : rule.length == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < rule.length; ++i) {
        if (i >= bytes.size()) return {StepKind::truncated, i, 0};
        const unsigned char low = i == 1 ? rule.second_low : 0x80;
        const unsigned char high = i == 1 ? rule.second_high : 0xBF;
        if (p[i] < low || p[i] > high) return {StepKind::invalid, i, 0};
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    return {StepKind::complete, rule.length, cp};
}

void append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

size_t append_sanitized(std::string& out, std::string_view bytes, bool at_end) {
    size_t pos = 0;
    while (pos < bytes.size()) {
        const Step s = step(bytes.substr(pos));
        if (s.kind == StepKind::truncated && !at_end) break;
        if (s.kind == StepKind::complete) {
            out.append(bytes.substr(pos, s.length));
        } else {
            out.append(replacement_character);
        }
        pos += s.length;
    }
    return pos;
}

bool is_valid(std::string_view bytes) {
    size_t pos = 0;
    while (pos < bytes.size()) {
        const Step s = step(bytes.substr(pos));
        if (s.kind != StepKind::complete) return false;
        pos += s.length;
    }
    return true;
}

}  // namespace llmq::utf8

#include "image_data_url.hpp"

#include <array>

namespace llmq::gateway {

namespace {

// -1: not in the alphabet.
constexpr std::array<int8_t, 256> base64_values() {
    std::array<int8_t, 256> v{};
    for (auto& x : v) x = -1;
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) v[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return v;
}
constexpr auto kBase64 = base64_values();

std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
    static const char* hex = "0123456789abcdef";
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != prefix[i]) return false;
    }
    return true;
}

}  // namespace

std::variant<std::vector<uint8_t>, std::string> decode_base64(std::string_view text) {
    if (text.empty()) return std::string("the base64 data is empty");
    if (text.size() % 4 != 0)
        return "the base64 data is " + std::to_string(text.size()) +
               " characters long, not a multiple of 4 (cut short, or '=' padding missing)";
    size_t padding = 0;
    if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
    std::vector<uint8_t> out;
    out.reserve(text.size() / 4 * 3);
    const size_t data_end = text.size() - padding;
    uint32_t group = 0;
    int bits = 0;
    for (size_t i = 0; i < data_end; ++i) {
        const int8_t v = kBase64[static_cast<uint8_t>(text[i])];
        if (v < 0) {
            const std::string what = text[i] == '=' ? "'=' before the end" : describe(text[i]) + " is not base64";
            return "character " + std::to_string(i) + " of the base64 data: " + what;
        }
        group = (group << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<uint8_t>(group >> bits));
            group &= (1u << bits) - 1;
        }
    }
    // The bits the padding leaves over must be zero (RFC 4648 section 3.5: canonical encoding).
    if (group != 0) return std::string("the base64 data's last character has bits set beyond its end");
    return out;
}

std::variant<std::vector<uint8_t>, std::string> decode_image_data_url(std::string_view url) {
    if (starts_with_nocase(url, "http://") || starts_with_nocase(url, "https://"))
        return std::string("only data URLs are taken (data:image/png;base64,... or data:image/jpeg;base64,...); "
                           "llmq-gateway never fetches http(s) URLs: download the image and send its bytes");
    if (!starts_with_nocase(url, "data:"))
        return std::string("must be a data URL (data:image/png;base64,... or data:image/jpeg;base64,...)");
    const size_t comma = url.find(',');
    if (comma == std::string_view::npos) return std::string("the data URL has no ',' before its data");
    const std::string_view header = url.substr(5, comma - 5);
    const std::string_view base64_suffix = ";base64";
    if (header.size() < base64_suffix.size() ||
        !starts_with_nocase(header.substr(header.size() - base64_suffix.size()), base64_suffix))
        return std::string("the data URL must be base64 (data:image/png;base64,...)");
    const std::string_view type = header.substr(0, header.size() - base64_suffix.size());
    if (!(starts_with_nocase(type, "image/png") && type.size() == 9) &&
        !(starts_with_nocase(type, "image/jpeg") && type.size() == 10) &&
        !(starts_with_nocase(type, "image/jpg") && type.size() == 9))
        return "the data URL's media type is '" + std::string(type).substr(0, 64) +
               "'; image/png and image/jpeg are taken";
    auto bytes = decode_base64(url.substr(comma + 1));
    if (auto* error = std::get_if<std::string>(&bytes)) return *error;
    return bytes;
}

}  // namespace llmq::gateway

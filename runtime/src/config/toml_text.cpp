#include "toml_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace llmq::config_detail {

std::string toml_string_literal(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\f': out += "\\f"; break;
            case '\r': out += "\\r"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04X",
                                  static_cast<unsigned>(static_cast<unsigned char>(c)));
                    out += escaped;
                } else {
                    out += c;  // UTF-8 bytes pass through: TOML strings are UTF-8
                }
        }
    }
    out += '"';
    return out;
}

std::string toml_float_literal(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    char text[64];
    auto [end, ec] = std::to_chars(text, text + sizeof text, value);
    std::string out(text, ec == std::errc() ? end : text);
    // TOML needs a '.' or an exponent to read a float; to_chars writes "1" for 1.0.
    if (out.find_first_of(".e") == std::string::npos) out += ".0";
    // TOML wants digits on both sides of '.' and in the exponent: "1e-05" is fine.
    return out;
}

std::string node_text(const toml::node& node) {
    std::string text;
    if (const auto* s = node.as_string()) {
        text = toml_string_literal(s->get());
    } else if (const auto* f = node.as_floating_point()) {
        text = toml_float_literal(f->get());
    } else if (node.is_table()) {
        text = "a table";
    } else if (node.is_array_of_tables()) {
        text = "an array of tables";
    } else {
        std::ostringstream stream;
        node.visit([&](const auto& n) {
            stream << toml::toml_formatter(n, toml::format_flags::none);
        });
        text = stream.str();
    }
    constexpr size_t kMaxChars = 80;
    if (text.size() > kMaxChars) {
        size_t cut = kMaxChars;
        // Do not cut a UTF-8 sequence in half.
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        text = text.substr(0, cut) + "...";
    }
    return text;
}

}  // namespace llmq::config_detail

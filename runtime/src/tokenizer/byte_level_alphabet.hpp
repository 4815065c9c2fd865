// The GPT-2 byte-level alphabet: each of the 256 byte values stands for one printable
// Unicode character, so that byte-level BPE vocabularies are strings of printable text.
// Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68
// bytes take U+0100, U+0101, ... in byte order (so ' ' is 'Ġ' U+0120, '\n' is 'Ċ' U+010A).
//
// Internal to runtime/src/tokenizer. Immutable after construction, any thread.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace llmq {

class ByteLevelAlphabet {
public:
    ByteLevelAlphabet();

    // The UTF-8 text of the character that stands for byte b.
    const std::string& encode(unsigned char b) const { return byte_to_text_[b]; }
    // Appends the characters for every byte of `bytes` to `out`.
    void encode(std::string_view bytes, std::string& out) const;
    // The byte a code point stands for, or nullopt when it is not in the alphabet.
    std::optional<unsigned char> decode(char32_t code_point) const;

private:
    std::array<std::string, 256> byte_to_text_;
    std::array<unsigned char, 68> shifted_to_byte_{};  // U+0100 + i stands for this byte
};

}  // namespace llmq

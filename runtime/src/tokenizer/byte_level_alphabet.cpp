#include "byte_level_alphabet.hpp"

#include "utf8.hpp"

namespace llmq {

namespace {

bool stands_for_itself(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

ByteLevelAlphabet::ByteLevelAlphabet() {
    unsigned shifted = 0;
    for (unsigned b = 0; b < 256; ++b) {
        char32_t cp = b;
        if (!stands_for_itself(b)) {
            shifted_to_byte_[shifted] = static_cast<unsigned char>(b);
            cp = 0x100 + shifted++;
        }
        utf8::append(byte_to_text_[b], cp);
    }
}

void ByteLevelAlphabet::encode(std::string_view bytes, std::string& out) const {
    for (char c : bytes) out += byte_to_text_[static_cast<unsigned char>(c)];
}

std::optional<unsigned char> ByteLevelAlphabet::decode(char32_t cp) const {
    if (cp < 0x100 && stands_for_itself(cp)) return static_cast<unsigned char>(cp);
    if (cp >= 0x100 && cp < 0x100 + shifted_to_byte_.size()) return shifted_to_byte_[cp - 0x100];
    return std::nullopt;
}

}  // namespace llmq

#include "pretokenizer.hpp"

#include <array>
#include <string>

#include "unicode_category.hpp"
#include "utf8.hpp"

namespace llmq {

namespace {

struct Char {
    size_t offset;  // in bytes, into the text
    char32_t cp;    // 0xFFFD stands for an ill-formed subpart
    CharClass cls;
};

std::vector<Char> split_characters(std::string_view text) {
    std::vector<Char> chars;
    chars.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        const utf8::Step s = utf8::step(text.substr(pos));
        if (s.kind == utf8::StepKind::complete) {
            chars.push_back({pos, s.code_point, char_class(s.code_point)});
        } else {
            chars.push_back({pos, 0xFFFD, CharClass::other});
        }
        pos += s.length;
    }
    return chars;
}

// Matches the patterns of the header at one position at a time. Each method returns the end
// (an index into chars) of the match at `i`, or `i` when its alternative does not match.
class Matcher {
public:
    Matcher(const std::vector<Char>& chars) : c_(chars), n_(chars.size()) {}

    bool is(size_t i, CharClass cls) const { return i < n_ && c_[i].cls == cls; }
    bool letter(size_t i) const { return is(i, CharClass::letter); }
    bool number(size_t i) const { return is(i, CharClass::number); }
    bool space(size_t i) const { return is(i, CharClass::whitespace); }
    bool other(size_t i) const { return is(i, CharClass::other); }
    bool cp_is(size_t i, char32_t cp) const { return i < n_ && c_[i].cp == cp; }
    bool newline(size_t i) const { return cp_is(i, '\r') || cp_is(i, '\n'); }

    // 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII case-insensitive.
    size_t contraction(size_t i, bool ignore_case) const {
        if (!cp_is(i, '\'')) return i;
        auto at = [&](size_t k, char lower) {
            if (k >= n_) return false;
            const char32_t cp = c_[k].cp;
            return cp == static_cast<char32_t>(lower) ||
                   (ignore_case && cp == static_cast<char32_t>(lower - 'a' + 'A'));
        };
        if (at(i + 1, 's') || at(i + 1, 't') || at(i + 1, 'm') || at(i + 1, 'd')) return i + 2;
        if ((at(i + 1, 'r') && at(i + 2, 'e')) || (at(i + 1, 'v') && at(i + 2, 'e')) ||
            (at(i + 1, 'l') && at(i + 2, 'l')))
            return i + 3;
        return i;
    }

    // " ?X+" where X is one class: the optional space is taken only when X follows it.
    size_t optional_space_run(size_t i, CharClass cls) const {
        size_t j = i;
        if (cp_is(j, ' ') && is(j + 1, cls)) ++j;
        if (!is(j, cls)) return i;
        while (is(j, cls)) ++j;
        return j;
    }

    // \s+(?!\S) then \s+: a whitespace run, less its last character when a non-space follows
    // (that character then leads the next chunk), but never empty.
    size_t whitespace_run(size_t i) const {
        if (!space(i)) return i;
        size_t j = i;
        while (space(j)) ++j;
        if (j == n_ || j - i == 1) return j;
        return j - 1;
    }

    size_t gpt2(size_t i) const {
        size_t j;
        if ((j = contraction(i, false)) != i) return j;
        if ((j = optional_space_run(i, CharClass::letter)) != i) return j;
        if ((j = optional_space_run(i, CharClass::number)) != i) return j;
        if ((j = optional_space_run(i, CharClass::other)) != i) return j;
        if ((j = whitespace_run(i)) != i) return j;
        return i + 1;  // unreachable: every character is in one of the classes above
    }

    size_t llama3(size_t i, size_t max_digits) const {
        size_t j;
        if ((j = contraction(i, true)) != i) return j;
        // [^\r\n\p{L}\p{N}]?\p{L}+
        j = i;
        if (!letter(j) && !number(j) && !newline(j) && letter(j + 1)) ++j;
        if (letter(j)) {
            while (letter(j)) ++j;
            return j;
        }
        // \p{N}{1,3} (or \p{N})
        if (number(i)) {
            j = i;
            while (number(j) && j - i < max_digits) ++j;
            return j;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if ((j = optional_space_run(i, CharClass::other)) != i) {
            while (newline(j)) ++j;
            return j;
        }
        // \s*[\r\n]+: the whitespace run up to and including its last line break
        if (space(i)) {
            size_t end = i;
            size_t last_break = n_;
            while (space(end)) {
                if (newline(end)) last_break = end;
                ++end;
            }
            if (last_break != n_) return last_break + 1;
        }
        if ((j = whitespace_run(i)) != i) return j;
        return i + 1;
    }

private:
    const std::vector<Char>& c_;
    size_t n_;
};

}  // namespace

Expected<PretokenizerStyle> pretokenizer_style(std::string_view pre) {
    static constexpr std::array<std::string_view, 4> gpt2 = {"", "default", "gpt2", "gpt-2"};
    static constexpr std::array<std::string_view, 4> llama3 = {"llama3", "llama-v3", "llama-bpe",
                                                               "smaug-bpe"};
    for (auto name : gpt2)
        if (pre == name) return PretokenizerStyle::gpt2;
    for (auto name : llama3)
        if (pre == name) return PretokenizerStyle::llama3;
    if (pre == "qwen2") return PretokenizerStyle::qwen2;
    return unsupported("tokenizer: pre-tokenizer tokenizer.ggml.pre = \"" + std::string(pre) +
                       "\" is not supported; llmq knows default, gpt2, gpt-2, llama3, llama-v3, "
                       "llama-bpe, smaug-bpe and qwen2");
}

void pretokenize(PretokenizerStyle style, std::string_view text,
                 std::vector<std::string_view>& out) {
    const std::vector<Char> chars = split_characters(text);
    const Matcher m(chars);
    size_t i = 0;
    while (i < chars.size()) {
        size_t j = 0;
        switch (style) {
            case PretokenizerStyle::gpt2: j = m.gpt2(i); break;
            case PretokenizerStyle::llama3: j = m.llama3(i, 3); break;
            case PretokenizerStyle::qwen2: j = m.llama3(i, 1); break;
        }
        const size_t begin = chars[i].offset;
        const size_t end = j < chars.size() ? chars[j].offset : text.size();
        out.push_back(text.substr(begin, end - begin));
        i = j;
    }
}

}  // namespace llmq

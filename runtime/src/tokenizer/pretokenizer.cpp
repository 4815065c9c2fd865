#include "pretokenizer.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <utility>

#include "unicode_category.hpp"
#include "utf8.hpp"

namespace llmq {

namespace {

struct Char {
    size_t offset;  // in bytes, into the text
    char32_t cp;    // 0xFFFD stands for an ill-formed subpart
    CharClass cls;
    Subcategory sub;
};

std::vector<Char> split_characters(std::string_view text) {
    std::vector<Char> chars;
    chars.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        const utf8::Step s = utf8::step(text.substr(pos));
        if (s.kind == utf8::StepKind::complete) {
            chars.push_back({pos, s.code_point, char_class(s.code_point), subcategory(s.code_point)});
        } else {
            chars.push_back({pos, 0xFFFD, CharClass::other, Subcategory::none});
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
        if ((j = newline_run(i)) != i) return j;
        if ((j = whitespace_run(i)) != i) return j;
        return i + 1;
    }

    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}]. A letter the subcategory table
    // does not know (a newer Unicode than the table's) counts as Lo, in both.
    bool cased_upper(size_t i) const {
        return i < n_ && (c_[i].sub == Subcategory::M || (letter(i) && c_[i].sub != Subcategory::Ll));
    }
    bool cased_lower(size_t i) const {
        return i < n_ && (c_[i].sub == Subcategory::M ||
                          (letter(i) && c_[i].sub != Subcategory::Lu && c_[i].sub != Subcategory::Lt));
    }
    // [^\r\n\p{L}\p{N}]
    bool tekken_prefix(size_t i) const { return i < n_ && !letter(i) && !number(i) && !newline(i); }

    // Upper*Lower+ from p, backtracking as a regex does: the longest Upper* run after which a
    // Lower+ run starts. Returns p when there is none.
    size_t upper_star_lower_plus(size_t p) const {
        size_t a = p;
        while (cased_upper(a)) ++a;
        for (size_t k = a + 1; k-- > p;) {
            if (!cased_lower(k)) continue;
            size_t e = k;
            while (cased_lower(e)) ++e;
            return e;
        }
        return p;
    }
    // Upper+Lower* from p; p when there is no Upper.
    size_t upper_plus_lower_star(size_t p) const {
        if (!cased_upper(p)) return p;
        size_t e = p;
        while (cased_upper(e)) ++e;
        while (cased_lower(e)) ++e;
        return e;
    }

    size_t tekken(size_t i) const {
        size_t j;
        // [^\r\n\p{L}\p{N}]?Upper*Lower+ | [^\r\n\p{L}\p{N}]?Upper+Lower* (the optional prefix
        // taken first, as the regex's greedy ? does)
        if (tekken_prefix(i) && (j = upper_star_lower_plus(i + 1)) != i + 1) return j;
        if ((j = upper_star_lower_plus(i)) != i) return j;
        if (tekken_prefix(i) && (j = upper_plus_lower_star(i + 1)) != i + 1) return j;
        if ((j = upper_plus_lower_star(i)) != i) return j;
        if (number(i)) return i + 1;  // \p{N}
        // ' ?[^\s\p{L}\p{N}]+[\r\n/]*'
        if ((j = optional_space_run(i, CharClass::other)) != i) {
            while (newline(j) || cp_is(j, '/')) ++j;
            return j;
        }
        if ((j = newline_run(i)) != i) return j;
        if ((j = whitespace_run(i)) != i) return j;
        return i + 1;
    }

    // DeepSeek V3's three patterns, each applied to the chunks the previous one left.
    // \p{N}{1,3}
    size_t digits_up_to_3(size_t i) const {
        size_t j = i;
        while (number(j) && j - i < 3) ++j;
        return j;
    }
    // [一-龥぀-ゟ゠-ヿ]+: CJK ideographs U+4E00..U+9FA5, hiragana and katakana U+3040..U+30FF
    size_t cjk_kana_run(size_t i) const {
        auto cjk = [&](size_t k) {
            return k < n_ && ((c_[k].cp >= 0x4E00 && c_[k].cp <= 0x9FA5) || (c_[k].cp >= 0x3040 && c_[k].cp <= 0x30FF));
        };
        size_t j = i;
        while (cjk(j)) ++j;
        return j;
    }
    bool punct_or_symbol(size_t i) const {
        return i < n_ && (c_[i].sub == Subcategory::P || c_[i].sub == Subcategory::S);
    }
    bool letter_or_mark(size_t i) const { return i < n_ && (letter(i) || c_[i].sub == Subcategory::M); }
    bool ascii_letter(size_t i) const {
        return i < n_ && ((c_[i].cp >= 'a' && c_[i].cp <= 'z') || (c_[i].cp >= 'A' && c_[i].cp <= 'Z'));
    }
    // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ |
    //  ?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+ ; i when nothing matches at i.
    size_t deepseek3_main(size_t i) const {
        size_t j;
        if (i < n_ && c_[i].cp < 0x80 && c_[i].cp > 0x20 && c_[i].cp < 0x7F && !ascii_letter(i) &&
            !(c_[i].cp >= '0' && c_[i].cp <= '9') && ascii_letter(i + 1)) {
            j = i + 1;
            while (ascii_letter(j)) ++j;
            return j;
        }
        const bool prefix = i < n_ && !newline(i) && !letter(i) && !punct_or_symbol(i);
        if (prefix && letter_or_mark(i + 1)) {
            j = i + 1;
            while (letter_or_mark(j)) ++j;
            return j;
        }
        if (letter_or_mark(i)) {
            j = i;
            while (letter_or_mark(j)) ++j;
            return j;
        }
        j = i;
        if (cp_is(j, ' ') && punct_or_symbol(j + 1)) ++j;
        if (punct_or_symbol(j)) {
            while (punct_or_symbol(j)) ++j;
            while (newline(j)) ++j;
            return j;
        }
        if ((j = newline_run(i)) != i) return j;
        return whitespace_run(i);
    }

    // \s*[\r\n]+: the whitespace run up to and including its last line break; i without one.
    size_t newline_run(size_t i) const {
        if (!space(i)) return i;
        size_t end = i, last_break = n_;
        while (space(end)) {
            if (newline(end)) last_break = end;
            ++end;
        }
        return last_break != n_ ? last_break + 1 : i;
    }

private:
    const std::vector<Char>& c_;
    size_t n_;
};

using Pattern = size_t (Matcher::*)(size_t) const;
using Span = std::pair<size_t, size_t>;  // [first, end) character indices

// Applies one pattern to each chunk, as a tokenizers Split with behavior Isolated does: every
// match is a chunk, and so is each stretch of text between matches. The pattern sees the
// chunk alone (its end is the end of the text for \s+(?!\S)).
std::vector<Span> split_pass(const std::vector<Char>& chars, const std::vector<Span>& chunks, Pattern pattern) {
    std::vector<Span> out;
    for (const auto& [b, e] : chunks) {
        const std::vector<Char> sub(chars.begin() + static_cast<std::ptrdiff_t>(b),
                                    chars.begin() + static_cast<std::ptrdiff_t>(e));
        const Matcher m(sub);
        size_t i = 0, gap = 0;
        while (i < sub.size()) {
            const size_t j = (m.*pattern)(i);
            if (j == i) {
                ++i;
                continue;
            }
            if (gap < i) out.emplace_back(b + gap, b + i);
            out.emplace_back(b + i, b + j);
            i = gap = j;
        }
        if (gap < sub.size()) out.emplace_back(b + gap, e);
    }
    return out;
}

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
    if (pre == "tekken") return PretokenizerStyle::tekken;
    if (pre == "deepseek-v3") return PretokenizerStyle::deepseek_v3;
    return unsupported("tokenizer: pre-tokenizer tokenizer.ggml.pre = \"" + std::string(pre) +
                       "\" is not supported; llmq knows default, gpt2, gpt-2, llama3, llama-v3, "
                       "llama-bpe, smaug-bpe, qwen2, tekken and deepseek-v3");
}

void pretokenize(PretokenizerStyle style, std::string_view text,
                 std::vector<std::string_view>& out) {
    const std::vector<Char> chars = split_characters(text);
    if (style == PretokenizerStyle::deepseek_v3) {
        std::vector<Span> chunks{{0, chars.size()}};
        for (Pattern p : {&Matcher::digits_up_to_3, &Matcher::cjk_kana_run, &Matcher::deepseek3_main})
            chunks = split_pass(chars, chunks, p);
        for (const auto& [b, e] : chunks) {
            const size_t begin = chars[b].offset;
            const size_t end = e < chars.size() ? chars[e].offset : text.size();
            out.push_back(text.substr(begin, end - begin));
        }
        return;
    }
    const Matcher m(chars);
    size_t i = 0;
    while (i < chars.size()) {
        size_t j = 0;
        switch (style) {
            case PretokenizerStyle::gpt2: j = m.gpt2(i); break;
            case PretokenizerStyle::llama3: j = m.llama3(i, 3); break;
            case PretokenizerStyle::qwen2: j = m.llama3(i, 1); break;
            case PretokenizerStyle::tekken: j = m.tekken(i); break;
            case PretokenizerStyle::deepseek_v3: break;  // above
        }
        const size_t begin = chars[i].offset;
        const size_t end = j < chars.size() ? chars[j].offset : text.size();
        out.push_back(text.substr(begin, end - begin));
        i = j;
    }
}

}  // namespace llmq

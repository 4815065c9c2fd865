#include "pretokenizer.hpp"

#include <array>
#include <cstddef>
#include <span>
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

// The letters of DeepSeek LLM's second pattern: Unicode's cased letters (LC) as its
// tokenizer.json lists them, code point ranges in order.
constexpr std::pair<char32_t, char32_t> deepseek_cased_letters[] = {
    {0x00041, 0x0005A}, {0x00061, 0x0007A}, {0x000B5, 0x000B5}, {0x000C0, 0x000D6}, {0x000D8, 0x000F6},
    {0x000F8, 0x001BA}, {0x001BC, 0x001BF}, {0x001C4, 0x00293}, {0x00295, 0x002AF}, {0x00370, 0x00373},
    {0x00376, 0x00377}, {0x0037B, 0x0037D}, {0x0037F, 0x0037F}, {0x00386, 0x00386}, {0x00388, 0x0038A},
    {0x0038C, 0x0038C}, {0x0038E, 0x003A1}, {0x003A3, 0x003F5}, {0x003F7, 0x00481}, {0x0048A, 0x0052F},
    {0x00531, 0x00556}, {0x010A0, 0x010C5}, {0x013A0, 0x013F5}, {0x013F8, 0x013FD}, {0x01C90, 0x01CBA},
    {0x01CBD, 0x01CBF}, {0x01D00, 0x01D2B}, {0x01D6B, 0x01D77}, {0x01D79, 0x01D9A}, {0x01E00, 0x01F15},
    {0x01F18, 0x01F1D}, {0x01F20, 0x01F45}, {0x01F48, 0x01F4D}, {0x01F50, 0x01F57}, {0x01F59, 0x01F59},
    {0x01F5B, 0x01F5B}, {0x01F5D, 0x01F5D}, {0x01F5F, 0x01F7D}, {0x01F80, 0x01FB4}, {0x01FB6, 0x01FBC},
    {0x01FBE, 0x01FBE}, {0x01FC2, 0x01FC4}, {0x01FC6, 0x01FCC}, {0x01FD0, 0x01FD3}, {0x01FD6, 0x01FDB},
    {0x01FE0, 0x01FEC}, {0x01FF2, 0x01FF4}, {0x01FF6, 0x01FFC}, {0x02102, 0x02102}, {0x02107, 0x02107},
    {0x0210A, 0x02113}, {0x02115, 0x02115}, {0x02119, 0x0211D}, {0x02124, 0x02124}, {0x02126, 0x02126},
    {0x02128, 0x02128}, {0x0212A, 0x0212D}, {0x0212F, 0x02134}, {0x02139, 0x02139}, {0x0213C, 0x0213F},
    {0x02145, 0x02149}, {0x0214E, 0x0214E}, {0x02183, 0x02184}, {0x02C00, 0x02C7B}, {0x02C7E, 0x02CE4},
    {0x02CEB, 0x02CEE}, {0x02CF2, 0x02CF3}, {0x0A640, 0x0A66D}, {0x0A680, 0x0A69B}, {0x0A722, 0x0A76F},
    {0x0A771, 0x0A787}, {0x0A78B, 0x0A78E}, {0x0AB70, 0x0ABBF}, {0x0FB00, 0x0FB06}, {0x0FB13, 0x0FB17},
    {0x0FF21, 0x0FF3A}, {0x0FF41, 0x0FF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

bool in_ranges(char32_t cp, std::span<const std::pair<char32_t, char32_t>> ranges) {
    for (const auto& [first, last] : ranges)
        if (cp >= first && cp <= last) return true;
    return false;
}

// DeepSeek LLM's third pattern's class: [!-/:-~！-／：-～‘-‟　-。]
constexpr std::pair<char32_t, char32_t> deepseek_punctuation[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002},
};
// [一-龥ࠀ-一가-퟿]: U+4E00..U+9FA5, U+0800..U+4E00 and U+AC00..U+D7FF
constexpr std::pair<char32_t, char32_t> deepseek_cjk_hangul[] = {{0x0800, 0x9FA5}, {0xAC00, 0xD7FF}};

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

    // DeepSeek LLM's and DeepSeek Coder's patterns.
    size_t one_newline(size_t i) const { return newline(i) ? i + 1 : i; }  // [\r\n]
    // \s?X+ where X is `in_class`; i when no X follows.
    template <typename Pred>
    size_t optional_space_then_run(size_t i, Pred in_class) const {
        size_t j = i;
        if (space(j) && j + 1 < n_ && in_class(j + 1)) ++j;
        if (!(j < n_ && in_class(j))) return i;
        while (j < n_ && in_class(j)) ++j;
        return j;
    }
    size_t deepseek_llm_letters(size_t i) const {
        return optional_space_then_run(i, [&](size_t k) { return in_ranges(c_[k].cp, deepseek_cased_letters); });
    }
    size_t deepseek_llm_punctuation(size_t i) const {
        return optional_space_then_run(i, [&](size_t k) { return in_ranges(c_[k].cp, deepseek_punctuation); });
    }
    // \s+$: the whitespace that ends the chunk.
    size_t trailing_space(size_t i) const {
        size_t j = i;
        while (space(j)) ++j;
        return j == n_ && j > i ? j : i;
    }
    size_t cjk_hangul_run(size_t i) const {
        size_t j = i;
        while (j < n_ && in_ranges(c_[j].cp, deepseek_cjk_hangul)) ++j;
        return j;
    }
    size_t number_run(size_t i) const {  // \p{N}+
        size_t j = i;
        while (number(j)) ++j;
        return j;
    }
    size_t one_number(size_t i) const { return number(i) ? i + 1 : i; }  // \p{N}
    size_t space_letters(size_t i) const {  // \s?\p{L}+
        return optional_space_then_run(i, [&](size_t k) { return letter(k); });
    }
    size_t space_punctuation(size_t i) const {  // \s?\p{P}+
        return optional_space_then_run(i, [&](size_t k) { return c_[k].sub == Subcategory::P; });
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
    if (pre == "deepseek-llm") return PretokenizerStyle::deepseek_llm;
    if (pre == "deepseek-coder") return PretokenizerStyle::deepseek_coder;
    return unsupported("tokenizer: pre-tokenizer tokenizer.ggml.pre = \"" + std::string(pre) +
                       "\" is not supported; llmq knows default, gpt2, gpt-2, llama3, llama-v3, "
                       "llama-bpe, smaug-bpe, qwen2, tekken, deepseek-llm, deepseek-coder and deepseek-v3");
}

void pretokenize(PretokenizerStyle style, std::string_view text,
                 std::vector<std::string_view>& out) {
    const std::vector<Char> chars = split_characters(text);
    std::vector<Pattern> passes;
    if (style == PretokenizerStyle::deepseek_v3)
        passes = {&Matcher::digits_up_to_3, &Matcher::cjk_kana_run, &Matcher::deepseek3_main};
    else if (style == PretokenizerStyle::deepseek_llm)
        passes = {&Matcher::one_newline,    &Matcher::deepseek_llm_letters, &Matcher::deepseek_llm_punctuation,
                  &Matcher::trailing_space, &Matcher::cjk_hangul_run,       &Matcher::number_run};
    else if (style == PretokenizerStyle::deepseek_coder)
        passes = {&Matcher::one_newline, &Matcher::space_letters, &Matcher::space_punctuation,
                  &Matcher::cjk_hangul_run, &Matcher::one_number};
    if (!passes.empty()) {
        std::vector<Span> chunks{{0, chars.size()}};
        for (Pattern p : passes) chunks = split_pass(chars, chunks, p);
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
            case PretokenizerStyle::deepseek_v3:
            case PretokenizerStyle::deepseek_llm:
            case PretokenizerStyle::deepseek_coder: break;  // above
        }
        const size_t begin = chars[i].offset;
        const size_t end = j < chars.size() ? chars[j].offset : text.size();
        out.push_back(text.substr(begin, end - begin));
        i = j;
    }
}

}  // namespace llmq

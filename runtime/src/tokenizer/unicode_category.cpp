#include "unicode_category.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace llmq {

namespace {

struct CategoryRange {
    uint32_t first;
    uint32_t last;
    CharClass category;
};

constexpr CharClass L = CharClass::letter;
constexpr CharClass N = CharClass::number;

constexpr CategoryRange category_ranges[] = {
#include "unicode_category_ranges.inc"
};

struct SubcategoryRange {
    uint32_t first;
    uint32_t last;
    Subcategory category;
};

constexpr Subcategory Lu = Subcategory::Lu, Ll = Subcategory::Ll, Lt = Subcategory::Lt,
                      Lm = Subcategory::Lm, Lo = Subcategory::Lo, M = Subcategory::M,
                      P = Subcategory::P, S = Subcategory::S;

constexpr SubcategoryRange subcategory_ranges[] = {
#include "unicode_subcategory_ranges.inc"
};

// The category of the range of `table` (sorted, non-overlapping) that holds cp, else `none`.
template <typename Range, size_t Count, typename Category>
Category find_range(const Range (&table)[Count], char32_t cp, Category none) {
    const auto* it = std::upper_bound(std::begin(table), std::end(table), cp,
                                      [](char32_t v, const Range& r) { return v < r.first; });
    if (it == std::begin(table)) return none;
    --it;
    return cp <= it->last ? it->category : none;
}

bool is_white_space(char32_t cp) {
    switch (cp) {
        case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
        case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
            return true;
        default:
            return cp >= 0x2000 && cp <= 0x200A;
    }
}

}  // namespace

CharClass char_class(char32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::letter;
        if (cp >= '0' && cp <= '9') return CharClass::number;
        return is_white_space(cp) ? CharClass::whitespace : CharClass::other;
    }
    if (is_white_space(cp)) return CharClass::whitespace;
    return find_range(category_ranges, cp, CharClass::other);
}

Subcategory subcategory(char32_t cp) { return find_range(subcategory_ranges, cp, Subcategory::none); }

}  // namespace llmq

#!/usr/bin/env python3
"""Writes pretokenizer_splits.json: how the Tekken and DeepSeek (LLM, Coder, V3) pre-tokenizer patterns
split test texts, computed with the `regex` module (the engine Hugging Face's tokenizers
patterns are written for), for pretokenizer_test.cpp.

DeepSeek's pre-tokenizers are Sequences of Splits with behavior Isolated: each pattern
splits every chunk the previous one left, and the text between two matches stays a chunk.

    python3 tests/runtime/tokenizer/make_pretokenizer_splits.py > \\
        tests/runtime/tokenizer/pretokenizer_splits.json
(needs the regex module; the texts of expected_ids.json are included)
"""
import json
import os
import random

import regex

TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
          r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK_V3 = [
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"""
    r""" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]

# DeepSeek LLM's cased-letter class, as code point ranges (the characters themselves do not
# survive copy and paste: several are canonical singletons that NFC replaces).
CASED = [(0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA),
         (0x1BC, 0x1BF), (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377),
         (0x37B, 0x37D), (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C),
         (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556),
         (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF),
         (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
         (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
         (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE),
         (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC),
         (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113),
         (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128),
         (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
         (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE),
         (0x2CF2, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787),
         (0xA78B, 0xA78E), (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A),
         (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB),
         (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943)]
CASED_CLASS = "".join("%s-%s" % (chr(a), chr(b)) for a, b in CASED)  # letters only: no escaping
DEEPSEEK_LLM = [
    r"[\r\n]",
    r"\s?[" + CASED_CLASS + r"]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    r"\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    r"\p{N}+",
]
DEEPSEEK_CODER = [
    r"[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    r"\p{N}",
]

EXTRA = [
    "Hello World, HELLO world. HeLLo wOrLD",
    "ǅungla ǈudi ǋubav: titlecase letters",
    "ʰaspirated ˈstress ᵃmodifier letters",
    "e\u0301cole nai\u0308ve \u0301mark-first a\u0300\u0301\u0302",
    "https://example.com/path/to/file.txt // comment /\n/ next",
    "DeepSeek-V3模型は非常にすごい123456789 かなカナ漢字",
    "中文测试：你好，世界！Chinese与English混合mixed",
    "ひらがなとカタカナ、そして漢字。",
    "1234567890 12 3 45678 x1y22z333",
    "def f(x):\n    return x**2 + 1\n\n\n",
    "Ελληνικά Кириллица עברית العربية हिन्दी ไทย",
    "@user #tag $100 €50 ¥1000 © ® ™ ± × ÷",
    "  leading and trailing spaces   ",
    "tabs\tand\u00a0non-breaking\u2003spaces\r\nCRLF\rCR",
    "emoji 😀👍🏽 and ZWJ 👨‍👩‍👧 sequences",
    "'s 'T 're 'VE contractions don't",
    "\x00\x01 control \x7f chars",
    "ÀÉÎÕÜ àéîõü ßẞ ǆǅǄ",
    "A\u0301B\u0302c\u0303",
    "ΐΰ ῗ Ω K Å ᾼ ι ℂ ℍ Ⅎ ⅎ Ↄ ꭰ ﬀ ＡＢｃ 𐐀𐑏 𞤀",
    "한국어 텍스트와 English 섞기 ！？（）「」 ‘quoted’ “double”　全角スペース。",
    "trailing whitespace at the end   ",
    "\n\n\r\n  \n x \n",
    "!!!???...,,,;;;",
    "MiXeD123CaSe456_with_underscores-and-dashes",
]

PIECES = ["한국", "！", "‘", "　", "Ω", "ΐ", "Hello", "WORLD", "low", "Ab", "ǅ", "ʰ", "e\u0301", "\u0301", "中文", "ひら", "カタ", "123", "4",
          "56789", " ", "  ", "\n", "\r\n", "\t", ".", ",", "!", "/", "//", "@", "$", "€", "😀",
          "'s", "'T", "x", "_", "-", "Ω", "ß", "ẞ", "ไทย", "हि", "\u00a0", "()", "[]", "{}"]


def in_turn(patterns, text):
    """Each pattern splits every chunk the one before left; text between matches stays."""
    chunks = [text]
    for pattern in patterns:
        compiled = regex.compile(pattern)
        out = []
        for chunk in chunks:
            last = 0
            for m in compiled.finditer(chunk):
                if m.start() > last:
                    out.append(chunk[last:m.start()])
                out.append(m.group())
                last = m.end()
            if last < len(chunk):
                out.append(chunk[last:])
        chunks = out
    return chunks


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "expected_ids.json")) as f:
        ids = json.load(f)
    texts = [c["text"] for c in ids["cases"] + ids["random_cases"]] + EXTRA
    rng = random.Random(20261202)
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14))) for _ in range(300)]
    tekken = regex.compile(TEKKEN)
    cases = [{"text": t, "tekken": tekken.findall(t), "deepseek-v3": in_turn(DEEPSEEK_V3, t),
              "deepseek-llm": in_turn(DEEPSEEK_LLM, t), "deepseek-coder": in_turn(DEEPSEEK_CODER, t)}
             for t in texts]
    for c in cases:
        for style in ("tekken", "deepseek-v3", "deepseek-llm", "deepseek-coder"):
            assert "".join(c[style]) == c["text"], (style, c)
    # one case a line, as expected_ids.json
    print('{"generated_by": %s,' % json.dumps("tests/runtime/tokenizer/make_pretokenizer_splits.py (regex %s)"
                                             % regex.__version__))
    print('"cases": [')
    print(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
    print("]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes pretokenizer_splits.json: how the Tekken and DeepSeek V3 pre-tokenizer patterns
split test texts, computed with the `regex` module (the engine Hugging Face's tokenizers
patterns are written for), for pretokenizer_test.cpp.

DeepSeek V3's pre-tokenizer is a Sequence of Splits with behavior Isolated: each pattern
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
    "!!!???...,,,;;;",
    "MiXeD123CaSe456_with_underscores-and-dashes",
]

PIECES = ["Hello", "WORLD", "low", "Ab", "ǅ", "ʰ", "e\u0301", "\u0301", "中文", "ひら", "カタ", "123", "4",
          "56789", " ", "  ", "\n", "\r\n", "\t", ".", ",", "!", "/", "//", "@", "$", "€", "😀",
          "'s", "'T", "x", "_", "-", "Ω", "ß", "ẞ", "ไทย", "हि", "\u00a0", "()", "[]", "{}"]


def deepseek_v3(text):
    chunks = [text]
    for pattern in DEEPSEEK_V3:
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
    cases = [{"text": t, "tekken": tekken.findall(t), "deepseek-v3": deepseek_v3(t)} for t in texts]
    for c in cases:
        assert "".join(c["tekken"]) == c["text"], c
        assert "".join(c["deepseek-v3"]) == c["text"], c
    print(json.dumps({"generated_by": "tests/runtime/tokenizer/make_pretokenizer_splits.py (regex %s)"
                      % regex.__version__, "cases": cases}, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main()

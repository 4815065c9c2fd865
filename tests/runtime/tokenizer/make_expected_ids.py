#!/usr/bin/python3
"""Writes expected_ids.json: reference token ids and pre-tokenizer splits for the tokenizer
tests, produced by implementations that share no code with llmq.

  llama-spm.gguf  Google's SentencePiece (Debian python3-sentencepiece 0.1.97), loaded with a
                  ModelProto built from the GGUF vocabulary the way Llama 2's tokenizer.model is
                  configured: BPE, byte_fallback, identity normalizer, add_dummy_prefix,
                  remove_extra_whitespaces off.
  gpt2-bpe.gguf   the GPT-2 encoder algorithm as OpenAI published it (encoder.py: bytes_to_unicode,
                  the pre-tokenization regex run by Python's `regex` module, BPE by merge rank),
                  written out below.
  splits          the gpt2 / llama3 / qwen2 pre-tokenization patterns run by the `regex` module.

Needs Debian's python3-sentencepiece, python3-protobuf and python3-regex:
    /usr/bin/python3 tests/runtime/tokenizer/make_expected_ids.py ../shared/vocab \\
        > tests/runtime/tokenizer/expected_ids.json
"""
import json
import random
import struct
import sys

import regex
import sentencepiece
from sentencepiece import sentencepiece_model_pb2 as model_pb2

CORPUS = [
    "Hello world",
    "hello world",
    " Hello world",
    "Hello  world",
    "  two leading spaces",
    "trailing space ",
    "trailing spaces   ",
    " ",
    "   ",
    "\n",
    "line one\nline two\n\nline four\n",
    "\ttab\tseparated\tvalues\t",
    "mixed \t \n whitespace \n\n  end",
    "windows\r\nline endings\r\n",
    "café résumé naïve façade",
    "Ångström Ölçek Œuvre Ça",
    "e\u0301 combining acute, n\u0303",
    "日本語のテキストです。",
    "中文字符测试，你好世界！",
    "한국어 텍스트",
    "Привет, мир! Как дела?",
    "Γειά σου κόσμε",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "🦙 llama 🦙🦙",
    "emoji 👍🏽 family 👨‍👩‍👧 flag 🇫🇷",
    "I'm sure we can't, they'll say we've done it; she'd know you're right, it's fine",
    "DON'T SHOUT'S 'quoted' ''",
    "numbers 1234567 3.14159 1,000,000 and 42nd",
    "x=1; y = x**2 # comment",
    "def f(a, b):\n    return a + b\n",
    "<s> not special </s> <unk>",
    "<|endoftext|> and <|im_start|>",
    "tabs\t\tand  double  spaces",
    "\u00a0non-breaking\u3000ideographic\u2003em",
    "ﬁ ligature ½ fraction ² superscript Ⅻ numeral",
    "Zürich 123abc abc123 a1b2c3",
    "ℕ ℝ ∑ ∫ → ≠",
    "bell\x07and\x1bescape",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX! 0123456789",
    "Llamas are domesticated South American camelids, widely used as meat and pack animals "
    "by Andean cultures since the pre-Columbian era. They are social animals and live with "
    "others as a herd.\n\nTheir wool is soft and contains only a small amount of lanolin.",
]

# Random strings over pieces that sit on the edges of the patterns: each class of character,
# apostrophes that do and do not start a contraction, runs of different whitespace.
RANDOM_PIECES = [
    " ", " ", "  ", "\n", "\r", "\r\n", "\t", "\u00a0", "\u3000", "a", "Z", "word", "é",
    "\u0301", "日本", "Ж", "1", "23", "4567", "\u0663", "\u00bd", "'", "'s", "'S", "'ll", "'LL",
    "'re", "'x", ".", "!?", "-", "__", "\U0001F999", "\u2581x", "<s>", "\x07",
]
RANDOM_CASES = 300


def random_texts():
    rng = random.Random(20240601)
    return ["".join(rng.choice(RANDOM_PIECES) for _ in range(rng.randint(1, 12)))
            for _ in range(RANDOM_CASES)]


PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}


def read_gguf_metadata(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        value = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return value

    def take_string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalars = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def take_value(t):
        if t in scalars:
            return take(scalars[t])
        if t == 8:
            return take_string()
        if t == 9:
            element_type = take("I")
            return [take_value(element_type) for _ in range(take("Q"))]
        raise ValueError("unknown GGUF type %d" % t)

    assert data[:4] == b"GGUF"
    pos = 4
    take("I")  # version
    take("Q")  # tensor count
    kv = {}
    for _ in range(take("Q")):
        key = take_string()
        kv[key] = take_value(take("I"))
    return kv


def sentencepiece_processor(kv):
    m = model_pb2.ModelProto()
    m.trainer_spec.model_type = model_pb2.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(kv["tokenizer.ggml.tokens"])
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id = kv["tokenizer.ggml.unknown_token_id"]
    m.trainer_spec.bos_id = kv["tokenizer.ggml.bos_token_id"]
    m.trainer_spec.eos_id = kv["tokenizer.ggml.eos_token_id"]
    m.trainer_spec.pad_id = -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    for text, score, kind in zip(kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.scores"],
                                 kv["tokenizer.ggml.token_type"]):
        piece = m.pieces.add()
        piece.piece = text
        piece.score = score
        piece.type = kind
    return sentencepiece.SentencePieceProcessor(model_proto=m.SerializeToString())


def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


class Gpt2Reference:
    def __init__(self, kv):
        self.ids = {t: i for i, t in enumerate(kv["tokenizer.ggml.tokens"])}
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(kv["tokenizer.ggml.merges"])}
        self.byte_char = bytes_to_unicode()
        self.pattern = regex.compile(PATTERNS["gpt2"])

    def bpe(self, word):
        word = list(word)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        out = []
        for chunk in self.pattern.findall(text):
            mapped = "".join(self.byte_char[b] for b in chunk.encode("utf-8"))
            out.extend(self.ids[piece] for piece in self.bpe(mapped))
        return out


def main():
    vocab_dir = sys.argv[1]
    spm_kv = read_gguf_metadata(vocab_dir + "/llama-spm.gguf")
    gpt2_kv = read_gguf_metadata(vocab_dir + "/gpt2-bpe.gguf")
    sp = sentencepiece_processor(spm_kv)
    gpt2 = Gpt2Reference(gpt2_kv)
    out = {
        "generated_by": "tests/runtime/tokenizer/make_expected_ids.py (sentencepiece %s, regex %s)"
                        % (sentencepiece.__version__, regex.__version__),
        "cases": [],
    }
    for text in CORPUS:
        spm_ids = sp.encode(text)
        out["cases"].append({
            "text": text,
            "llama_spm": spm_ids,
            "llama_spm_decoded": sp.decode(spm_ids),
            "gpt2_bpe": gpt2.encode(text),
            "splits": {name: regex.findall(p, text) for name, p in PATTERNS.items()},
        })
    # Random texts: reference ids for the byte-level vocabulary and splits. SentencePiece
    # ids only for texts without U+2581, which SentencePiece cannot tell from a space.
    out["random_cases"] = []
    for text in random_texts():
        case = {
            "text": text,
            "gpt2_bpe": gpt2.encode(text),
            "splits": {name: regex.findall(p, text) for name, p in PATTERNS.items()},
        }
        if "\u2581" not in text:
            case["llama_spm"] = sp.encode(text)
        out["random_cases"].append(case)
    # One case per line: diffs of a regenerated file stay readable.
    lines = ['{"generated_by": %s,' % json.dumps(out["generated_by"])]
    for key in ("cases", "random_cases"):
        rows = [json.dumps(case, ensure_ascii=True) for case in out[key]]
        lines.append('"%s": [\n%s\n]%s' % (key, ",\n".join(rows), "," if key == "cases" else "}"))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

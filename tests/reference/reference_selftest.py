#!/usr/bin/python3
"""Checks the reference itself, so that a disagreement with llmq points at llmq.

1. GGUF parsing: a file written here byte by byte (every metadata type, nested arrays, a
   non-default alignment, F32/F16/BF16/Q8_0 tensors with known values) reads back exactly.
2. RoPE: one hand-computed rotation for each pairing convention.
3. The forward pass: a 1-layer GQA model with biases is computed a second time with scalar
   Python loops (lists and math only, position by position, with an explicit KV cache) and must
   agree with the vectorized torch forward to 1e-10.

Prints one line per check and `N passed, M failed`; exits non-zero on failure.
"""
import math
import os
import random
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402


# --- a minimal GGUF writer (test-only; the reference never writes) --------------------------

def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key, vtype, payload):
    return _str(key) + struct.pack("<I", vtype) + payload


def write_gguf(path, kvs, tensors, alignment=32):
    """kvs: list of encoded kv bytes; tensors: list of (name, ne, ggml_type, raw bytes)."""
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos = b""
    blob = b""
    for name, ne, ttype, raw in tensors:
        pad = (-len(blob)) % alignment
        blob += b"\0" * pad
        infos += _str(name) + struct.pack("<I", len(ne)) + b"".join(
            struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", ttype, len(blob))
        blob += raw
    head = header + infos
    head += b"\0" * ((-len(head)) % alignment)
    with open(path, "wb") as f:
        f.write(head + blob)


def f32_tensor(name, arr):
    arr = np.asarray(arr, dtype="<f4")
    return (name, list(reversed(arr.shape)), ref.GGML_F32, arr.tobytes())


# --- checks -----------------------------------------------------------------------------------

def check_gguf_parse(tmp):
    kvs = [
        _kv("general.alignment", 4, struct.pack("<I", 64)),
        _kv("u8", 0, struct.pack("<B", 200)),
        _kv("i8", 1, struct.pack("<b", -100)),
        _kv("u16", 2, struct.pack("<H", 60000)),
        _kv("i16", 3, struct.pack("<h", -30000)),
        _kv("u32", 4, struct.pack("<I", 4000000000)),
        _kv("i32", 5, struct.pack("<i", -2000000000)),
        _kv("f32", 6, struct.pack("<f", 0.5)),
        _kv("bool", 7, struct.pack("<?", True)),
        _kv("str", 8, _str("héllo")),
        _kv("u64", 10, struct.pack("<Q", 2 ** 63 + 5)),
        _kv("i64", 11, struct.pack("<q", -(2 ** 62))),
        _kv("f64", 12, struct.pack("<d", 1e-300)),
        _kv("arr_s", 9, struct.pack("<IQ", 8, 2) + _str("a") + _str("bc")),
        _kv("arr_nested", 9, struct.pack("<IQ", 9, 2)
            + struct.pack("<IQ", 5, 2) + struct.pack("<ii", 1, -2)
            + struct.pack("<IQ", 5, 0)),
    ]
    f16_vals = np.array([1.0, -2.5, 65504.0, 2.0 ** -24], dtype="<f2")
    bf16_bits = np.array([0x3F80, 0xC020, 0x4049, 0x0001], dtype="<u2")  # 1, -2.5, 3.140625, tiny
    q8 = b""
    q8_expect = []
    for d, base in ((0.25, -16), (-0.125, 3)):
        qs = [(base + j) % 256 - 128 for j in range(32)]
        q8 += np.float16(d).tobytes() + struct.pack("<32b", *qs)
        q8_expect += [d * q for q in qs]
    tensors = [
        f32_tensor("a", np.arange(6, dtype=np.float32).reshape(2, 3)),
        ("h", [4], ref.GGML_F16, f16_vals.tobytes()),
        ("b", [2, 2], ref.GGML_BF16, bf16_bits.tobytes()),
        ("q", [64], ref.GGML_Q8_0, q8),
    ]
    path = os.path.join(tmp, "parse.gguf")
    write_gguf(path, kvs, tensors, alignment=64)
    g = ref.GGUFFile(path)
    md = g.metadata
    expect_md = {"general.alignment": 64, "u8": 200, "i8": -100, "u16": 60000, "i16": -30000,
                 "u32": 4000000000, "i32": -2000000000, "f32": 0.5, "bool": True, "str": "héllo",
                 "u64": 2 ** 63 + 5, "i64": -(2 ** 62), "f64": 1e-300, "arr_s": ["a", "bc"],
                 "arr_nested": [[1, -2], []]}
    problems = [k for k, v in expect_md.items() if md.get(k) != v]
    if g.alignment != 64 or g.data_offset % 64 != 0:
        problems.append("alignment")
    if g.tensor("a").tolist() != [[0, 1, 2], [3, 4, 5]]:
        problems.append("f32 tensor a")
    if g.tensor("h").tolist() != [1.0, -2.5, 65504.0, 2.0 ** -24]:
        problems.append("f16 tensor h")
    if g.tensor("b").tolist() != [[1.0, -2.5], [3.140625, float(np.uint32(1 << 16).view(np.float32))]]:
        problems.append("bf16 tensor b")
    if g.tensor("q").tolist() != q8_expect:
        problems.append("q8_0 tensor q")
    return not problems, "mismatch: " + ", ".join(problems) if problems else "all types read back"


def check_rope_by_hand():
    import torch
    m = ref.LlamaReference.__new__(ref.LlamaReference)
    m.n_rot, m.rope_base, m.freq_scale, m.rope_factors = 4, 100.0, 1.0, None
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]], dtype=torch.float64)
    pos = torch.tensor([3])
    # Adjacent pairs (0,1) at 3 rad, (2,3) at 3 * 100^(-2/4) = 0.3 rad.
    c0, s0, c1, s1 = math.cos(3), math.sin(3), math.cos(0.3), math.sin(0.3)
    m.neox = False
    want_norm = [1 * c0 - 2 * s0, 1 * s0 + 2 * c0, 3 * c1 - 4 * s1, 3 * s1 + 4 * c1]
    got_norm = m.rope(x, pos)[0, 0].tolist()
    # NeoX halves: pairs (0,2) at 3 rad, (1,3) at 0.3 rad.
    m.neox = True
    want_neox = [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 1 * s0 + 3 * c0, 2 * s1 + 4 * c1]
    got_neox = m.rope(x, pos)[0, 0].tolist()
    err = max(abs(a - b) for a, b in zip(want_norm + want_neox, got_norm + got_neox))
    return err < 1e-12, "max error %.2e" % err


def _matvec(W, x):
    return [sum(w * v for w, v in zip(row, x)) for row in W]


def _scalar_forward(p, tokens):
    """Token-by-token Llama with an explicit KV cache; returns last-position logits."""
    dim, n_head, n_kv, hd, eps, base = p["dim"], p["n_head"], p["n_kv"], p["hd"], p["eps"], p["base"]

    def rms(x, w):
        s = math.sqrt(sum(v * v for v in x) / len(x) + eps)
        return [v / s * wi for v, wi in zip(x, w)]

    def rope(vec, pos):
        out = list(vec)
        for h in range(len(vec) // hd):
            for i in range(hd // 2):
                t = pos * base ** (-2.0 * i / hd)
                a, b = vec[h * hd + 2 * i], vec[h * hd + 2 * i + 1]
                out[h * hd + 2 * i] = a * math.cos(t) - b * math.sin(t)
                out[h * hd + 2 * i + 1] = a * math.sin(t) + b * math.cos(t)
        return out

    keys, values = [], []
    for pos, tok in enumerate(tokens):
        x = list(p["embd"][tok])
        h = rms(x, p["attn_norm"])
        q = [a + b for a, b in zip(_matvec(p["wq"], h), p["bq"])]
        k = [a + b for a, b in zip(_matvec(p["wk"], h), p["bk"])]
        v = [a + b for a, b in zip(_matvec(p["wv"], h), p["bv"])]
        q, k = rope(q, pos), rope(k, pos)
        keys.append(k)
        values.append(v)
        attn = []
        for hq in range(n_head):
            hk = hq * n_kv // n_head
            qh = q[hq * hd:(hq + 1) * hd]
            scores = [sum(a * b for a, b in zip(qh, kk[hk * hd:(hk + 1) * hd])) / math.sqrt(hd)
                      for kk in keys]
            mx = max(scores)
            e = [math.exp(s - mx) for s in scores]
            z = sum(e)
            for d in range(hd):
                attn.append(sum(e[t] / z * values[t][hk * hd + d] for t in range(len(keys))))
        x = [a + b for a, b in zip(x, _matvec(p["wo"], attn))]
        h = rms(x, p["ffn_norm"])
        g = _matvec(p["wg"], h)
        u = _matvec(p["wu"], h)
        act = [gi / (1 + math.exp(-gi)) * ui for gi, ui in zip(g, u)]
        x = [a + b for a, b in zip(x, _matvec(p["wd"], act))]
    x = rms(x, p["out_norm"])
    return _matvec(p["embd"], x)  # tied LM head


def check_forward_scalar(tmp):
    rng = random.Random(7)
    dim, n_head, n_kv, ffn, vocab = 8, 4, 2, 12, 11
    hd = dim // n_head

    def mat(r, c, s=0.5):
        # Values exactly representable in f32 so the file holds what the scalar path uses.
        return [[float(np.float32(rng.gauss(0, s))) for _ in range(c)] for _ in range(r)]

    p = {"dim": dim, "n_head": n_head, "n_kv": n_kv, "hd": hd, "eps": 1e-5, "base": 10000.0,
         "embd": mat(vocab, dim, 1.0), "attn_norm": mat(1, dim)[0], "ffn_norm": mat(1, dim)[0],
         "out_norm": mat(1, dim)[0], "wq": mat(dim, dim), "wk": mat(n_kv * hd, dim),
         "wv": mat(n_kv * hd, dim), "bq": mat(1, dim)[0], "bk": mat(1, n_kv * hd)[0],
         "bv": mat(1, n_kv * hd)[0], "wo": mat(dim, dim), "wg": mat(ffn, dim),
         "wu": mat(ffn, dim), "wd": mat(dim, ffn)}
    eps32 = float(np.float32(p["eps"]))
    p["eps"] = eps32
    kvs = [
        _kv("general.architecture", 8, _str("llama")),
        _kv("llama.embedding_length", 4, struct.pack("<I", dim)),
        _kv("llama.block_count", 4, struct.pack("<I", 1)),
        _kv("llama.attention.head_count", 4, struct.pack("<I", n_head)),
        _kv("llama.attention.head_count_kv", 4, struct.pack("<I", n_kv)),
        _kv("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", eps32)),
        _kv("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
    ]
    names = {"token_embd.weight": "embd", "output_norm.weight": "out_norm",
             "blk.0.attn_norm.weight": "attn_norm", "blk.0.ffn_norm.weight": "ffn_norm",
             "blk.0.attn_q.weight": "wq", "blk.0.attn_k.weight": "wk", "blk.0.attn_v.weight": "wv",
             "blk.0.attn_q.bias": "bq", "blk.0.attn_k.bias": "bk", "blk.0.attn_v.bias": "bv",
             "blk.0.attn_output.weight": "wo", "blk.0.ffn_gate.weight": "wg",
             "blk.0.ffn_up.weight": "wu", "blk.0.ffn_down.weight": "wd"}
    tensors = [f32_tensor(n, p[k]) for n, k in names.items()]
    path = os.path.join(tmp, "tiny.gguf")
    write_gguf(path, kvs, tensors)
    model = ref.LlamaReference(path)
    tokens = [3, 10, 0, 7, 7]
    want = _scalar_forward(p, tokens)
    got = model.last_logits(tokens).tolist()
    err = max(abs(a - b) for a, b in zip(want, got))
    return err < 1e-10, "1-layer GQA+bias model, max |scalar - torch| = %.2e" % err


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("gguf_parse", lambda: check_gguf_parse(tmp)),
                         ("rope_by_hand", check_rope_by_hand),
                         ("forward_vs_scalar", lambda: check_forward_scalar(tmp))):
            ok, msg = fn()
            print("%s %s: %s" % ("PASS" if ok else "FAIL", name, msg))
            passed += ok
            failed += not ok
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A plain float64 reference of the Llama decoder, read straight from a GGUF file.

Written from the architecture (the Llama paper, the GGUF specification and the llama.cpp
conventions for tensor layout and RoPE), independently of llmq's C++ code, so that llmq's
logits can be checked against something that shares none of its code paths.

Usage:
    llama_reference.py MODEL.gguf --tokens 1,2,3 [--greedy N]
prints one JSON object: {"logits": [...last position...], "greedy": [...]} (greedy only with
--greedy N: N argmax tokens, lowest id on ties, each fed back before choosing the next).

Needs numpy and torch (Debian's /usr/bin/python3 has both).
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# GGUF v3 container
# ---------------------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"

# Metadata value types (GGUF spec).
_SCALAR_FORMATS = {
    0: "<B",   # UINT8
    1: "<b",   # INT8
    2: "<H",   # UINT16
    3: "<h",   # INT16
    4: "<I",   # UINT32
    5: "<i",   # INT32
    6: "<f",   # FLOAT32
    7: "<?",   # BOOL
    10: "<Q",  # UINT64
    11: "<q",  # INT64
    12: "<d",  # FLOAT64
}
_TYPE_STRING = 8
_TYPE_ARRAY = 9

# ggml tensor types this reference understands.
GGML_F32 = 0
GGML_F16 = 1
GGML_Q8_0 = 8
GGML_BF16 = 30
Q8_0_BLOCK = 32           # values per block
Q8_0_BLOCK_BYTES = 2 + 32  # fp16 scale + 32 int8


class GGUFError(Exception):
    pass


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise GGUFError("truncated at byte %d (need %d more)" % (self.pos, n))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def scalar(self, fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def string(self):
        n = self.scalar("<Q")
        return self.take(n).decode("utf-8")

    def value(self, vtype):
        if vtype in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[vtype])
        if vtype == _TYPE_STRING:
            return self.string()
        if vtype == _TYPE_ARRAY:
            elem_type = self.scalar("<I")
            count = self.scalar("<Q")
            return [self.value(elem_type) for _ in range(count)]
        raise GGUFError("unknown metadata value type %d at byte %d" % (vtype, self.pos))


class GGUFFile:
    """Metadata (dict key -> value) and tensors (name -> (ne list, ggml type, bytes))."""

    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        r = _Reader(data)
        if r.take(4) != GGUF_MAGIC:
            raise GGUFError("%s: not a GGUF file (bad magic)" % path)
        self.version = r.scalar("<I")
        if self.version != 3:
            raise GGUFError("%s: GGUF version %d, expected 3" % (path, self.version))
        n_tensors = r.scalar("<Q")
        n_kv = r.scalar("<Q")
        self.metadata = {}
        for _ in range(n_kv):
            key = r.string()
            vtype = r.scalar("<I")
            self.metadata[key] = r.value(vtype)
        infos = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.scalar("<I")
            ne = [r.scalar("<Q") for _ in range(n_dims)]
            ttype = r.scalar("<I")
            offset = r.scalar("<Q")
            infos.append((name, ne, ttype, offset))
        alignment = self.metadata.get("general.alignment", 32)
        self.alignment = alignment
        self.data_offset = (r.pos + alignment - 1) // alignment * alignment
        self.tensors = {}
        for name, ne, ttype, offset in infos:
            nbytes = _tensor_nbytes(name, ne, ttype)
            start = self.data_offset + offset
            if start + nbytes > len(data):
                raise GGUFError("%s: tensor %s runs past the end of the file" % (path, name))
            self.tensors[name] = (ne, ttype, data[start:start + nbytes])

    def tensor(self, name):
        """Dequantized float64 torch tensor, shape reversed from GGUF ne: [ne1][ne0] for 2-D."""
        if name not in self.tensors:
            raise GGUFError("missing tensor %s" % name)
        ne, ttype, raw = self.tensors[name]
        flat = dequantize(ttype, raw, _count(ne))
        return torch.from_numpy(flat.astype(np.float64)).reshape(list(reversed(ne)))

    def has(self, name):
        return name in self.tensors


def _count(ne):
    n = 1
    for d in ne:
        n *= d
    return n


def _tensor_nbytes(name, ne, ttype):
    n = _count(ne)
    if ttype == GGML_F32:
        return 4 * n
    if ttype in (GGML_F16, GGML_BF16):
        return 2 * n
    if ttype == GGML_Q8_0:
        if ne[0] % Q8_0_BLOCK != 0:
            raise GGUFError("tensor %s: Q8_0 row of %d is not a multiple of 32" % (name, ne[0]))
        return n // Q8_0_BLOCK * Q8_0_BLOCK_BYTES
    raise GGUFError("tensor %s: ggml type %d not supported by the reference" % (name, ttype))


def dequantize(ttype, raw, n):
    """Return a flat float32 numpy array of n values."""
    if ttype == GGML_F32:
        return np.frombuffer(raw, dtype="<f4", count=n).copy()
    if ttype == GGML_F16:
        return np.frombuffer(raw, dtype="<f2", count=n).astype(np.float32)
    if ttype == GGML_BF16:
        bits = np.frombuffer(raw, dtype="<u2", count=n).astype(np.uint32) << 16
        return bits.view(np.float32)
    if ttype == GGML_Q8_0:
        blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q8_0_BLOCK_BYTES)
        d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)        # [nblocks, 1]
        q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)        # [nblocks, 32]
        return (d * q).reshape(-1)[:n]
    raise GGUFError("ggml type %d not supported" % ttype)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

class LlamaReference:
    def __init__(self, path):
        g = GGUFFile(path)
        md = g.metadata
        self.arch = md["general.architecture"]
        a = self.arch
        self.dim = int(md[a + ".embedding_length"])
        self.n_layer = int(md[a + ".block_count"])
        self.n_head = int(md[a + ".attention.head_count"])
        self.n_kv = int(md.get(a + ".attention.head_count_kv", self.n_head))
        self.head_dim = int(md.get(a + ".attention.key_length", self.dim // self.n_head))
        self.eps = float(md[a + ".attention.layer_norm_rms_epsilon"])
        self.rope_base = float(md.get(a + ".rope.freq_base", 10000.0))
        self.n_rot = int(md.get(a + ".rope.dimension_count", self.head_dim))
        self.freq_scale = 1.0
        scaling = md.get(a + ".rope.scaling.type", "none")
        if scaling == "linear":
            self.freq_scale = 1.0 / float(md[a + ".rope.scaling.factor"])
        elif scaling not in ("none", ""):
            raise GGUFError("rope scaling %r not supported by the reference" % scaling)
        # llama.cpp: "llama"-family archs rotate adjacent pairs; qwen2 uses the NeoX halves.
        self.neox = a in ("qwen2",)
        # Llama 3 style per-frequency divisors (llama.cpp: theta_i /= rope_freqs[i]).
        self.rope_factors = g.tensor("rope_freqs.weight") if g.has("rope_freqs.weight") else None
        # Mistral's sliding window: query i sees keys j with i - window < j <= i.
        self.window = int(md.get(a + ".attention.sliding_window", 0))

        self.tok_embd = g.tensor("token_embd.weight")                 # [vocab, dim]
        self.vocab = self.tok_embd.shape[0]
        self.out_norm = g.tensor("output_norm.weight")
        self.lm_head = g.tensor("output.weight") if g.has("output.weight") else self.tok_embd
        self.layers = []
        for i in range(self.n_layer):
            p = "blk.%d." % i
            layer = {}
            for short in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                          "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"):
                layer[short] = g.tensor(p + short + ".weight")
            for short in ("attn_q", "attn_k", "attn_v"):
                name = p + short + ".bias"
                layer[short + "_bias"] = g.tensor(name) if g.has(name) else None
            self.layers.append(layer)

    def rms_norm(self, x, w):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + self.eps) * w

    def rope(self, x, positions):
        """x: [seq, heads, head_dim]; rotates the first n_rot dims of each head."""
        half = self.n_rot // 2
        i = torch.arange(half, dtype=torch.float64)
        inv_freq = self.rope_base ** (-2.0 * i / self.n_rot)
        if self.rope_factors is not None:
            inv_freq = inv_freq / self.rope_factors[:half]
        theta = positions.to(torch.float64)[:, None] * self.freq_scale * inv_freq[None, :]
        cos = torch.cos(theta)[:, None, :]   # [seq, 1, half]
        sin = torch.sin(theta)[:, None, :]
        out = x.clone()
        if self.neox:
            a = x[..., 0:half]
            b = x[..., half:self.n_rot]
            out[..., 0:half] = a * cos - b * sin
            out[..., half:self.n_rot] = a * sin + b * cos
        else:
            a = x[..., 0:self.n_rot:2]
            b = x[..., 1:self.n_rot:2]
            out[..., 0:self.n_rot:2] = a * cos - b * sin
            out[..., 1:self.n_rot:2] = a * sin + b * cos
        return out

    def forward(self, tokens):
        """Logits [seq, vocab] for the whole sequence (causal)."""
        seq = len(tokens)
        x = self.tok_embd[torch.tensor(tokens, dtype=torch.long)]     # [seq, dim]
        positions = torch.arange(seq)
        group = self.n_head // self.n_kv
        mask = torch.full((seq, seq), float("-inf"), dtype=torch.float64).triu(1)
        if self.window > 0:
            mask = mask + torch.full((seq, seq), float("-inf"), dtype=torch.float64).tril(-self.window)
        for L in self.layers:
            h = self.rms_norm(x, L["attn_norm"])
            q = h @ L["attn_q"].T
            k = h @ L["attn_k"].T
            v = h @ L["attn_v"].T
            if L["attn_q_bias"] is not None:
                q = q + L["attn_q_bias"]
            if L["attn_k_bias"] is not None:
                k = k + L["attn_k_bias"]
            if L["attn_v_bias"] is not None:
                v = v + L["attn_v_bias"]
            q = self.rope(q.reshape(seq, self.n_head, self.head_dim), positions)
            k = self.rope(k.reshape(seq, self.n_kv, self.head_dim), positions)
            v = v.reshape(seq, self.n_kv, self.head_dim)
            heads = []
            for hq in range(self.n_head):
                hk = hq // group
                scores = q[:, hq, :] @ k[:, hk, :].T / math.sqrt(self.head_dim) + mask
                heads.append(torch.softmax(scores, dim=-1) @ v[:, hk, :])
            attn = torch.cat(heads, dim=-1)                            # [seq, n_head*head_dim]
            x = x + attn @ L["attn_output"].T
            h = self.rms_norm(x, L["ffn_norm"])
            gate = h @ L["ffn_gate"].T
            up = h @ L["ffn_up"].T
            x = x + (torch.nn.functional.silu(gate) * up) @ L["ffn_down"].T
        x = self.rms_norm(x, self.out_norm)
        return x @ self.lm_head.T

    def last_logits(self, tokens):
        return self.forward(tokens)[-1]

    def greedy(self, tokens, n):
        """(chosen tokens, top-2 margin at each step)."""
        seq = list(tokens)
        chosen, margins = [], []
        for _ in range(n):
            logits = self.last_logits(seq)
            top = torch.topk(logits, 2).values
            # Lowest id on ties: the first index holding the maximum.
            best = int((logits == logits.max()).nonzero()[0])
            chosen.append(best)
            margins.append(float(top[0] - top[1]))
            seq.append(best)
        return chosen, margins


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--greedy", type=int, default=0, help="greedy tokens to generate")
    args = ap.parse_args(argv)
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    model = LlamaReference(args.model)
    for t in tokens:
        if not 0 <= t < model.vocab:
            ap.error("token %d outside the vocabulary of %d" % (t, model.vocab))
    result = {"logits": model.last_logits(tokens).tolist()}
    if args.greedy:
        chosen, margins = model.greedy(tokens, args.greedy)
        result["greedy"] = chosen
        result["greedy_margins"] = margins
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

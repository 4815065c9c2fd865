#!/usr/bin/python3
"""A float64 reference of Hugging Face's LlamaForCausalLM and Qwen2ForCausalLM (and Mistral's,
which is Llama's with a sliding window), read straight from a model directory: config.json
and the safetensors shards.

Written from the transformers model definitions (modeling_llama.py, modeling_qwen2.py,
modeling_rope_utils.py: rotate_half RoPE over the half-split pairs, the llama3 and linear
rope_scaling, repeat_kv grouped-query attention, q/k/v biases, tie_word_embeddings) and the
safetensors format, independently of llmq's code and of the GGUF conventions.

Usage:
    hf_reference.py MODEL_DIR --tokens 1,2,3 [--greedy N]
prints {"logits": [...last position...], "greedy": [...]} like llama_reference.py.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference  # noqa: E402  (greedy decoding only)


class SafetensorsError(Exception):
    pass


_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
           "F64": np.dtype("<f8")}


def read_safetensors(path):
    """{name: float64 torch tensor} of one safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise SafetensorsError("%s: %s has dtype %s" % (path, name, info["dtype"]))
        begin, end = info["data_offsets"]
        raw = np.frombuffer(data[base + begin:base + end], dtype=dt)
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(raw.astype(np.float64).copy()).reshape(info["shape"])
    return out


def read_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return weights


def rope_inv_freq(cfg, head_dim):
    """modeling_rope_utils: default, linear and llama3 inverse frequencies (float64)."""
    base = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv_freq
        llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * llama / factor + smooth * llama
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, llama)
    raise SafetensorsError("rope_scaling %r not in the reference" % kind)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class HFReference:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        if cfg["model_type"] not in ("llama", "mistral", "qwen2"):
            raise SafetensorsError("model_type %s not in the reference" % cfg["model_type"])
        w = read_weights(model_dir)
        self.w = w
        self.dim = cfg["hidden_size"]
        self.n_layer = cfg["num_hidden_layers"]
        self.n_head = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads", self.n_head)
        self.head_dim = cfg.get("head_dim") or self.dim // self.n_head
        self.eps = cfg["rms_norm_eps"]
        self.inv_freq = rope_inv_freq(cfg, self.head_dim)
        self.window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
        self.embed = w["model.embed_tokens.weight"]
        self.vocab = self.embed.shape[0]
        tied = cfg.get("tie_word_embeddings", False)
        self.lm_head = self.embed if tied or "lm_head.weight" not in w else w["lm_head.weight"]

    def rms_norm(self, x, weight):
        variance = (x * x).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    def linear(self, x, name, bias=False):
        y = x @ self.w[name + ".weight"].T
        if bias and (name + ".bias") in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def forward(self, tokens):
        seq = len(tokens)
        x = self.embed[torch.tensor(tokens, dtype=torch.long)]
        pos = torch.arange(seq, dtype=torch.float64)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None], emb.sin()[None]           # [1, seq, head_dim]
        mask = torch.full((seq, seq), float("-inf"), dtype=torch.float64).triu(1)
        if self.window:
            mask = mask + torch.full((seq, seq), float("-inf"), dtype=torch.float64).tril(-self.window)
        groups = self.n_head // self.n_kv
        for i in range(self.n_layer):
            p = "model.layers.%d." % i
            h = self.rms_norm(x, self.w[p + "input_layernorm.weight"])
            q = self.linear(h, p + "self_attn.q_proj", True).view(seq, self.n_head, self.head_dim).transpose(0, 1)
            k = self.linear(h, p + "self_attn.k_proj", True).view(seq, self.n_kv, self.head_dim).transpose(0, 1)
            v = self.linear(h, p + "self_attn.v_proj", True).view(seq, self.n_kv, self.head_dim).transpose(0, 1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(groups, dim=0)                 # repeat_kv
            v = v.repeat_interleave(groups, dim=0)
            scores = q @ k.transpose(1, 2) / math.sqrt(self.head_dim) + mask
            attn = torch.softmax(scores, dim=-1) @ v               # [heads, seq, head_dim]
            attn = attn.transpose(0, 1).reshape(seq, self.n_head * self.head_dim)
            x = x + self.linear(attn, p + "self_attn.o_proj")
            h = self.rms_norm(x, self.w[p + "post_attention_layernorm.weight"])
            gate = self.linear(h, p + "mlp.gate_proj")
            up = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj")
        x = self.rms_norm(x, self.w["model.norm.weight"])
        return x @ self.lm_head.T

    def last_logits(self, tokens):
        return self.forward(tokens)[-1]

    # Argmax decoding with the lowest id on ties: the same loop as the GGUF reference's.
    greedy = llama_reference.LlamaReference.greedy


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--greedy", type=int, default=0)
    args = ap.parse_args(argv)
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    m = HFReference(args.model_dir)
    result = {"logits": m.last_logits(tokens).tolist()}
    if args.greedy:
        result["greedy"], result["greedy_margins"] = m.greedy(tokens, args.greedy)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

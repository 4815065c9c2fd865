#!/usr/bin/python3
"""llmq's mllama (Llama 3.2 Vision) text model against a float64 reference written from
Hugging Face's definitions (transformers/models/mllama: MllamaTextModel,
MllamaCrossAttentionDecoderLayer, MllamaTextCrossAttention, _prepare_cross_attention_mask,
and MllamaProcessor's get_cross_attention_token_mask / convert_sparse_cross_attention_mask_to_dense).

Usage: mllama_reference_check.py LLMQ_MAKE_MODEL MLLAMA_TEXT_DUMP

For each case: a small random mllama file (llmq-make-model --arch mllama), random
cross-attention states for its images (HF's layout: per image max_num_tiles x rows_per_tile
rows, the tiles past the image's tiles_used padding that the mask hides), then
mllama_text_dump runs llmq's engine greedily on 1 device, tensor = 2, pipeline = 2,
tensor 2 x pipeline 2 and with 3-token prefill chunks. Each run's logits at every step must be
within TOL of the reference fed the same tokens, and its greedy tokens must be the reference's
(a differing token is excused only at a near tie, as in reference_check.py); every run must
give the one-device run's tokens.

The one rule not from Hugging Face: a text row that sees no image (the rows before the first
<|image|>) gets neither the attention branch nor the MLP branch. HF masks only the MLP branch
(full_text_row_masked_out_mask) and lets such a row attend uniformly over every image row,
padding tiles included; Meta's reference implementation (llama-models, CrossAttention.forward)
multiplies the attention output by the same mask, and llmq's ABI (llmq_cross_attention_args)
follows Meta. HF_MASKED_ROW_ATTENTION below flips the reference to HF's behaviour; the check
then fails on every case whose prompt has a row before the first image, showing the rule matters.
"""
import math
import os
import struct
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import GGUFFile  # noqa: E402  (the GGUF container reader only)

torch.set_num_threads(1)
HF_MASKED_ROW_ATTENTION = os.environ.get("MLLAMA_HF_MASKED_ROW_ATTENTION") == "1"
# F32 weights and an f32 KV cache: only f32 accumulation order differs (reference_check.py's
# TOL_F32 reasoning); the cross layers add two more f32 softmax/matmul stages.
TOL = 1e-4
STEPS = 6


def cross_attention_token_mask(tokens, image_token):
    """HF MllamaProcessor get_cross_attention_token_mask: [start, end) positions per image."""
    locs = [i for i, t in enumerate(tokens) if t == image_token]
    if not locs:
        return []
    if len(locs) == 1:
        return [[locs[0], len(tokens)]]
    masks = [[a, b] for a, b in zip(locs[:-1], locs[1:])]
    masks.append([locs[-1], len(tokens)])
    last_end = masks[-1][1]
    for m in masks[::-1]:
        if m[0] == m[1] - 1:
            m[1] = last_end
        last_end = m[1]
    return masks


class MllamaReference:
    def __init__(self, path):
        g = GGUFFile(path)
        md = g.metadata
        a = "mllama."
        self.dim = int(md[a + "embedding_length"])
        self.n_layer = int(md[a + "block_count"])
        self.n_head = int(md[a + "attention.head_count"])
        self.n_kv = int(md[a + "attention.head_count_kv"])
        self.hd = self.dim // self.n_head
        self.eps = float(md[a + "attention.layer_norm_rms_epsilon"])
        self.theta = float(md[a + "rope.freq_base"])
        self.cross = set(int(i) for i in md[a + "attention.cross_attention_layers"])
        self.rope_factors = g.tensor("rope_freqs.weight") if g.has("rope_freqs.weight") else None
        self.embed = g.tensor("token_embd.weight")   # [vocab + 8, dim]
        self.lm_head = g.tensor("output.weight")     # [vocab, dim]
        self.vocab = self.lm_head.shape[0]
        self.image_token = self.vocab                # HF image_token_index = vocab_size (128256)
        self.norm = g.tensor("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = "blk.%d." % i
            L = {n: g.tensor(p + n + ".weight") for n in ("attn_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
            if i in self.cross:
                for n in ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"):
                    L[n] = g.tensor(p + "cross_attn_" + n + ".weight")
                L["attn_gate"] = g.tensor(p + "cross_attn_attn_gate")
                L["mlp_gate"] = g.tensor(p + "cross_attn_mlp_gate")
            else:
                for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
                    L[n] = g.tensor(p + n + ".weight")
            self.layers.append(L)

    def rms(self, x, w):  # MllamaTextRMSNorm
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, pos):
        # Llama 3.1 rope (rope_freqs holds the llama3 divisors); GGUF's converter permutes
        # q/k rows so that pairs (2i, 2i+1) rotate together.
        half = self.hd // 2
        inv = self.theta ** (-torch.arange(half, dtype=torch.float64) * 2 / self.hd)
        if self.rope_factors is not None:
            inv = inv / self.rope_factors
        ang = pos.to(torch.float64)[:, None] * inv[None, :]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        out = x.clone()
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    def mlp(self, L, h):  # MllamaTextMLP
        return (torch.nn.functional.silu(h @ L["ffn_gate"].T) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T

    def forward(self, tokens, prompt_len, images):
        """Logits [seq, vocab]. images: list of (rows [max_tiles*rpt, dim], max_tiles, rpt,
        tiles_used), or None for a text-only request (HF skips the cross layers)."""
        seq = len(tokens)
        x = self.embed[torch.tensor(tokens)]
        pos = torch.arange(seq)
        group = self.n_head // self.n_kv
        causal = torch.full((seq, seq), float("-inf"), dtype=torch.float64).triu(1)
        if images:
            spans = cross_attention_token_mask(tokens[:prompt_len], self.image_token)
            assert len(spans) == len(images)
            states = torch.cat([im[0] for im in images])                 # [R, dim]
            mask = torch.zeros(seq, states.shape[0], dtype=torch.float64)  # 1 = visible
            at = 0
            for (start, end), (rows, max_tiles, rpt, used) in zip(spans, images):
                # convert_sparse_cross_attention_mask_to_dense, with generate()'s rule: rows past
                # the prompt repeat the last prompt row.
                for t in range(seq):
                    q = min(t, prompt_len - 1)
                    if start <= q < end:
                        mask[t, at:at + used * rpt] = 1.0
                at += max_tiles * rpt
            full_row = (mask.sum(-1) > 0).to(torch.float64)[:, None]   # full_text_row_masked_out_mask
            bias = (1.0 - mask) * torch.finfo(torch.float64).min
            bias = bias * full_row                                       # cross_attention_mask *= full_row
        for i, L in enumerate(self.layers):
            if i in self.cross:
                if not images:
                    continue
                h = self.rms(x, L["attn_norm"])
                q = self.rms((h @ L["q_proj"].T).view(seq, self.n_head, self.hd), L["q_norm"])
                R = states.shape[0]
                k = self.rms((states @ L["k_proj"].T).view(R, self.n_kv, self.hd), L["k_norm"])
                v = (states @ L["v_proj"].T).view(R, self.n_kv, self.hd)
                k = k.repeat_interleave(group, dim=1)
                v = v.repeat_interleave(group, dim=1)
                scores = torch.einsum("thd,rhd->htr", q, k) / math.sqrt(self.hd) + bias[None]
                att = torch.einsum("htr,rhd->thd", torch.softmax(scores, -1), v)
                if not HF_MASKED_ROW_ATTENTION:
                    att = att * full_row[:, :, None]
                x = x + torch.tanh(L["attn_gate"]) * (att.reshape(seq, -1) @ L["o_proj"].T)
                m = self.mlp(L, self.rms(x, L["ffn_norm"])) * full_row
                x = x + torch.tanh(L["mlp_gate"]) * m
                continue
            h = self.rms(x, L["attn_norm"])
            q = self.rope((h @ L["attn_q"].T).view(seq, self.n_head, self.hd), pos)
            k = self.rope((h @ L["attn_k"].T).view(seq, self.n_kv, self.hd), pos).repeat_interleave(group, 1)
            v = (h @ L["attn_v"].T).view(seq, self.n_kv, self.hd).repeat_interleave(group, 1)
            scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(self.hd) + causal[None]
            att = torch.einsum("hts,shd->thd", torch.softmax(scores, -1), v)
            x = x + att.reshape(seq, -1) @ L["attn_output"].T
            x = x + self.mlp(L, self.rms(x, L["ffn_norm"]))
        return self.rms(x, self.norm) @ self.lm_head.T


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd[0], r.stderr.strip()))


def check_case(name, maker, dump, tmp, model_args, prompt, image_specs, dim):
    path = os.path.join(tmp, name + ".gguf")
    run([maker, "--arch", "mllama", "--out", path, "--dim", str(dim)] + model_args.split())
    ref = MllamaReference(path)
    gen = torch.Generator().manual_seed(len(name))
    images, blob = [], b""
    max_tiles, rpt = 4, 5
    for used in image_specs:
        rows = torch.randn(max_tiles * rpt, dim, generator=gen, dtype=torch.float64)
        rows32 = rows.to(torch.float32)
        images.append((rows32.to(torch.float64), max_tiles, rpt, used))
        blob += rows32.numpy().tobytes()
    states_args = []
    if images:
        sp = os.path.join(tmp, name + ".states")
        with open(sp, "wb") as f:
            f.write(blob)
        states_args = ["--states", sp, "--max-tiles", str(max_tiles), "--rows-per-tile", str(rpt),
                       "--tiles-used", ",".join(str(u) for u in image_specs)]
    configs = [("1 device", []), ("tensor 2", ["--tensor", "2"]), ("pipeline 2", ["--pipeline", "2"]),
               ("tensor 2 x pipeline 2", ["--tensor", "2", "--pipeline", "2"]),
               ("prefill chunks of 3", ["--prefill-chunk", "3"])]
    failures, first_tokens = [], None
    for label, extra in configs:
        out = os.path.join(tmp, name + "_out")
        run([dump, path, out, "--prompt-tokens", ",".join(map(str, prompt)), "--max-tokens", str(STEPS)]
            + states_args + extra)
        tokens = [int(l) for l in open(out + ".tokens").read().split()]
        raw = open(out + ".logits", "rb").read()
        got = torch.tensor(struct.unpack("<%df" % (len(raw) // 4), raw), dtype=torch.float64).view(-1, ref.vocab)
        if first_tokens is None:
            first_tokens = tokens
        elif tokens != first_tokens:
            failures.append("%s: tokens %s differ from one device's %s" % (label, tokens, first_tokens))
        seqs = list(prompt)
        worst = 0.0
        for step, tok in enumerate(tokens):
            want = ref.forward(seqs, len(prompt), images)[-1]
            err = (got[step] - want).abs().max().item()
            worst = max(worst, err)
            if err > TOL:
                failures.append("%s: step %d logits differ by %.3g (tolerance %g)" % (label, step, err, TOL))
                break
            top = torch.topk(want, 2)
            best = int(top.indices[0])
            if tok != best:
                if (top.values[0] - top.values[1]).item() <= 2 * TOL:
                    print("  %s: near tie at step %d, stopping the comparison" % (label, step))
                    break
                failures.append("%s: step %d token %d, reference %d" % (label, step, tok, best))
                break
            seqs.append(tok)
        print("  %-24s tokens %s, max |logit error| %.2e" % (label, tokens, worst))
    return failures


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    maker, dump = argv[1], argv[2]
    V = 300  # <|image|> is id 300
    cases = [
        # name, model args, prompt, tiles_used per image
        ("one_image_two_of_four_tiles", "--layers 4 --heads 4 --kv-heads 2 --ffn 128 --vocab 300 --cross-layers 1,3 --rope-freqs",
         [1, V, 40, 41, 42, 43, 50, 51], [2]),
        ("two_images_text_between_gqa", "--layers 5 --heads 8 --kv-heads 2 --ffn 96 --vocab 300 --cross-layers 0,3",
         [1, 60, 61, V, 70, 71, 72, V, 80, 81, 82], [3, 1]),
        ("two_consecutive_images", "--layers 3 --heads 4 --kv-heads 4 --ffn 128 --vocab 300 --cross-layers 2",
         [1, 33, V, V, 90, 91, 92, 93], [1, 4]),
        ("text_only_skips_cross_layers", "--layers 4 --heads 4 --kv-heads 2 --ffn 128 --vocab 300 --cross-layers 1,3",
         [1, 40, 41, 42, 43, 50, 51], []),
    ]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, args, prompt, specs in cases:
            print(name)
            try:
                fails = check_case(name, maker, dump, tmp, args, prompt, specs, 64)
            except Exception as e:  # a failed run is a failed case
                fails = [str(e)]
            for f in fails:
                print("  FAIL " + f)
            failed += bool(fails)
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

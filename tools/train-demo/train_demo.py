#!/usr/bin/python3
"""Train the demo model: a small Llama on the King James Bible, written as a GGUF file.

The text comes from Debian's bible-kjv-text package (read through its `bible` program, package
bible-kjv); the King James Version's copyright has expired (see the package's copyright file).
Every 50th block of 20 verses is held out for the perplexity check.

Steps, all on the CPU with Debian's python3-torch:
  1. a SentencePiece-style vocabulary (byte fallback + pieces learned by byte-pair merging; a
     piece's score is minus its merge rank), written so that llmq's SentencePiece tokenizer
     (highest-scoring adjacent pair first, leftmost on ties) encodes exactly as this script does;
  2. a Llama (RMSNorm, RoPE on adjacent pairs, grouped-query attention, SwiGLU, tied embeddings)
     trained with AdamW for a fixed number of steps;
  3. the held-out perplexity, over consecutive windows of --ctx tokens (every token but a
     window's first is predicted from the tokens before it in its window), the same windows
     `llmq perplexity` uses;
  4. a manifest (metadata + tensor table) and one float32 blob, turned into GGUF by
     `llmq-make-model --import` (the project's own writer).

    /usr/bin/python3 tools/train-demo/train_demo.py --make-model build/tools/make-model/llmq-make-model \
        --out models/kjv-demo.gguf
"""
import argparse
import collections
import heapq
import json
import math
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

SPACE = "\u2581"
SPECIALS = ["<unk>", "<s>", "</s>"]
UNK, BOS, EOS = 0, 1, 2
TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_BYTE = 1, 2, 3, 6


# ---- corpus -------------------------------------------------------------------------------
def read_verses(bible):
    out = subprocess.run([bible, "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    verses = []
    for line in out.splitlines():
        m = re.match(r"^\S+?\d+:\d+ (.*)$", line)
        if m:
            verses.append(m.group(1).strip())
    if len(verses) != 31102:
        sys.exit("expected the 31102 verses of the KJV from `%s`, got %d" % (bible, len(verses)))
    return verses


def split_verses(verses):
    train, held = [], []
    for i, v in enumerate(verses):
        (held if (i // 20) % 50 == 49 else train).append(v)
    return "\n".join(train) + "\n", "\n".join(held) + "\n"


# ---- vocabulary ---------------------------------------------------------------------------
def normalize(text):
    return SPACE + text.replace(" ", SPACE)


def units(normalized):
    """Pieces never hold a newline or a non-leading space mark, so no merge crosses these."""
    return re.findall("\n|" + SPACE + "[^" + SPACE + "\n]*|[^" + SPACE + "\n]+", normalized)


def train_bpe(text, vocab_size):
    counts = collections.Counter(units(normalize(text)))
    words = [list(u) for u in counts]
    freq = [counts[u] for u in counts]
    alphabet = sorted({c for u in counts for c in u if c != "\n"})
    pieces = list(alphabet)
    budget = vocab_size - len(SPECIALS) - 256 - len(pieces)
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for wi, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[a, b] += freq[wi]
            where[a, b].add(wi)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < budget and heap:
        c, pair = heapq.heappop(heap)
        if -c != pair_count.get(pair, 0) or -c < 2:
            if -c >= 2 and pair_count.get(pair, 0) >= 2:
                heapq.heappush(heap, (-pair_count[pair], pair))
            continue
        a, b = pair
        merged = a + b
        merges.append(merged)
        for wi in list(where[pair]):
            w = words[wi]
            for x, y in zip(w, w[1:]):
                pair_count[x, y] -= freq[wi]
            i, nw = 0, []
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    nw.append(merged)
                    i += 2
                else:
                    nw.append(w[i])
                    i += 1
            words[wi] = nw
            for x, y in zip(nw, nw[1:]):
                pair_count[x, y] += freq[wi]
                where[x, y].add(wi)
                heapq.heappush(heap, (-pair_count[x, y], (x, y)))
        del pair_count[pair]
    tokens = SPECIALS + ["<0x%02X>" % b for b in range(256)]
    types = [TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL] + [TYPE_BYTE] * 256
    scores = [0.0] * len(tokens)
    seen = set()
    for p in alphabet:
        tokens.append(p); types.append(TYPE_NORMAL); scores.append(-1e6); seen.add(p)
    for rank, p in enumerate(merges):
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p); types.append(TYPE_NORMAL); scores.append(-float(rank))
    return tokens, scores, types


class Encoder:
    """llmq's SentencePiece BPE: merge the adjacent pair whose concatenation is a piece with
    the highest score, leftmost on ties; leftovers fall back to byte tokens."""

    def __init__(self, tokens, scores, types):
        self.piece = {t: i for i, t in enumerate(tokens) if types[i] == TYPE_NORMAL}
        self.scores = scores
        self.cache = {}

    def unit(self, u):
        if u in self.cache:
            return self.cache[u]
        sym = list(u)
        while True:
            best, at = None, -1
            for i in range(len(sym) - 1):
                pid = self.piece.get(sym[i] + sym[i + 1])
                if pid is not None and (best is None or self.scores[pid] > best):
                    best, at = self.scores[pid], i
            if at < 0:
                break
            sym[at:at + 2] = [sym[at] + sym[at + 1]]
        ids = []
        for s in sym:
            if s in self.piece:
                ids.append(self.piece[s])
            else:
                ids.extend(3 + b for b in s.encode("utf-8"))
        self.cache[u] = ids
        return ids

    def encode(self, text, bos=True):
        ids = [BOS] if bos else []
        for u in units(normalize(text)):
            ids.extend(self.unit(u))
        return ids


# ---- model ----------------------------------------------------------------------------------
class Llama(torch.nn.Module):
    def __init__(self, vocab, dim, layers, heads, kv_heads, ffn, ctx, eps=1e-5, theta=10000.0):
        super().__init__()
        self.dim, self.heads, self.kv_heads, self.hd, self.eps = dim, heads, kv_heads, dim // heads, eps
        self.emb = torch.nn.Parameter(torch.randn(vocab, dim) * 0.02)
        self.blocks = torch.nn.ModuleList()
        kv = kv_heads * self.hd
        out_std = 0.02 / math.sqrt(2 * layers)
        for _ in range(layers):
            b = torch.nn.ParameterDict({
                "attn_norm": torch.nn.Parameter(torch.ones(dim)),
                "attn_q": torch.nn.Parameter(torch.randn(dim, dim) * 0.02),
                "attn_k": torch.nn.Parameter(torch.randn(kv, dim) * 0.02),
                "attn_v": torch.nn.Parameter(torch.randn(kv, dim) * 0.02),
                "attn_output": torch.nn.Parameter(torch.randn(dim, dim) * out_std),
                "ffn_norm": torch.nn.Parameter(torch.ones(dim)),
                "ffn_gate": torch.nn.Parameter(torch.randn(ffn, dim) * 0.02),
                "ffn_up": torch.nn.Parameter(torch.randn(ffn, dim) * 0.02),
                "ffn_down": torch.nn.Parameter(torch.randn(dim, ffn) * out_std),
            })
            self.blocks.append(b)
        self.out_norm = torch.nn.Parameter(torch.ones(dim))
        half = self.hd // 2
        inv = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / self.hd)
        ang = torch.arange(ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cos(ang).float(), persistent=False)
        self.register_buffer("sin", torch.sin(ang).float(), persistent=False)
        self.register_buffer("mask", torch.full((ctx, ctx), float("-inf")).triu(1), persistent=False)

    def norm(self, x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x):  # x [B, T, H, hd]; pairs (2i, 2i+1), as GGUF's llama architecture
        T = x.shape[1]
        c, s = self.cos[:T, None, :], self.sin[:T, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)

    def forward(self, idx):
        B, T = idx.shape
        x = self.emb[idx]
        g = self.heads // self.kv_heads
        for L in self.blocks:
            h = self.norm(x, L["attn_norm"])
            q = self.rope((h @ L["attn_q"].T).view(B, T, self.heads, self.hd))
            k = self.rope((h @ L["attn_k"].T).view(B, T, self.kv_heads, self.hd))
            v = (h @ L["attn_v"].T).view(B, T, self.kv_heads, self.hd)
            k = k.repeat_interleave(g, dim=2)
            v = v.repeat_interleave(g, dim=2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, hd]
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + self.mask[:T, :T]
            a = torch.softmax(scores, dim=-1) @ v
            x = x + a.transpose(1, 2).reshape(B, T, self.dim) @ L["attn_output"].T
            h = self.norm(x, L["ffn_norm"])
            x = x + (F.silu(h @ L["ffn_gate"].T) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T
        return self.norm(x, self.out_norm) @ self.emb.T


def windows(ids, ctx):
    return [ids[i:i + ctx] for i in range(0, len(ids) - 1, ctx) if len(ids[i:i + ctx]) > 1]


@torch.no_grad()
@torch.no_grad()
def perplexity(model, ids, ctx):
    model.eval()
    nll, n = 0.0, 0
    for w in windows(ids, ctx):
        t = torch.tensor([w])
        logp = torch.log_softmax(model(t)[0].double(), dim=-1)
        nll -= float(logp[torch.arange(len(w) - 1), t[0, 1:]].sum())
        n += len(w) - 1
    model.train()
    return math.exp(nll / n), n


# ---- output -------------------------------------------------------------------------------
def write_manifest(path, model, args, vocab):
    tokens, scores, types = vocab
    blob_path = path + ".f32"
    tensors, offset = [], 0
    with open(blob_path, "wb") as blob:
        def add(name, t):
            nonlocal offset
            t = t.detach().float().contiguous()
            blob.write(t.numpy().tobytes())
            # GGUF lists the row length first; torch's [out, in] rows are GGUF rows.
            tensors.append({"name": name, "shape": list(reversed(t.shape)), "offset": offset})
            offset += t.numel()
        add("token_embd.weight", model.emb)
        add("output_norm.weight", model.out_norm)
        for i, L in enumerate(model.blocks):
            for k in ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                      "ffn_gate", "ffn_up", "ffn_down"]:
                add("blk.%d.%s.weight" % (i, k), L[k])
    a = "llama."
    md = [
        ("general.architecture", "string", "llama"),
        ("general.name", "string", "llmq KJV demo"),
        ("general.license", "string", "Apache-2.0 (weights); training text: KJV, public domain"),
        (a + "context_length", "u32", args.ctx),
        (a + "embedding_length", "u32", args.dim),
        (a + "block_count", "u32", args.layers),
        (a + "feed_forward_length", "u32", args.ffn),
        (a + "attention.head_count", "u32", args.heads),
        (a + "attention.head_count_kv", "u32", args.kv_heads),
        (a + "attention.layer_norm_rms_epsilon", "f32", 1e-5),
        (a + "rope.freq_base", "f32", 10000.0),
        (a + "rope.dimension_count", "u32", args.dim // args.heads),
        (a + "vocab_size", "u32", len(tokens)),
        ("tokenizer.ggml.model", "string", "llama"),
        ("tokenizer.ggml.tokens", "string_array", tokens),
        ("tokenizer.ggml.scores", "f32_array", scores),
        ("tokenizer.ggml.token_type", "i32_array", types),
        ("tokenizer.ggml.bos_token_id", "u32", BOS),
        ("tokenizer.ggml.eos_token_id", "u32", EOS),
        ("tokenizer.ggml.unknown_token_id", "u32", UNK),
        ("tokenizer.ggml.add_bos_token", "bool", True),
        ("tokenizer.ggml.add_space_prefix", "bool", True),
    ]
    with open(path, "w") as f:
        json.dump({"data": os.path.basename(blob_path),
                   "metadata": [{"key": k, "type": t, "value": v} for k, t, v in md],
                   "tensors": tensors}, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bible", default="/usr/bin/bible")
    p.add_argument("--out", required=True, help="the GGUF file to write")
    p.add_argument("--make-model", help="llmq-make-model (else only the manifest is written)")
    p.add_argument("--dtype", default="f16")
    p.add_argument("--work", default=None, help="folder for the manifest and held-out text")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=704)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=None,
                   help="stop training after this much wall time (the schedule follows the time "
                        "used, so a loaded machine trains fewer steps but still finishes its decay)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1611)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    work = args.work or os.path.dirname(os.path.abspath(args.out))
    os.makedirs(work, exist_ok=True)
    started = time.time()

    train_text, held_text = split_verses(read_verses(args.bible))
    with open(os.path.join(work, "kjv-heldout.txt"), "w") as f:
        f.write(held_text)
    vocab = train_bpe(train_text, args.vocab)
    enc = Encoder(*vocab)
    train_ids = torch.tensor(enc.encode(train_text))
    held_ids = enc.encode(held_text)
    with open(os.path.join(work, "kjv-heldout.ids.json"), "w") as f:
        json.dump(held_ids, f)
    print("vocabulary %d tokens; %d training tokens, %d held-out (%.0f s)" %
          (len(vocab[0]), len(train_ids), len(held_ids), time.time() - started), flush=True)

    model = Llama(len(vocab[0]), args.dim, args.layers, args.heads, args.kv_heads, args.ffn, args.ctx)
    n_params = sum(t.numel() for t in model.parameters())
    print("model: %.2f M parameters" % (n_params / 1e6), flush=True)
    decay = [t for t in model.parameters() if t.dim() == 2]
    other = [t for t in model.parameters() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)
    train_started = time.time()
    budget = args.minutes * 60.0 if args.minutes else None
    steps_done = 0
    for step in range(args.steps):
        progress = step / args.steps
        if budget:
            progress = max(progress, (time.time() - train_started) / budget)
            if progress >= 1.0:
                break
        warmup = min(1.0, 30.0 * max(progress, (step + 1) / args.steps))  # the first 1/30
        lr = args.lr * warmup * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(train_ids) - args.ctx - 1, (args.batch,), generator=gen)
        x = torch.stack([train_ids[s:s + args.ctx] for s in starts])
        y = torch.stack([train_ids[s + 1:s + args.ctx + 1] for s in starts])
        loss = F.cross_entropy(model(x).view(-1, len(vocab[0])), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps_done = step + 1
        if step < 3 or step % 25 == 0 or step == args.steps - 1:
            print("step %d/%d loss %.3f lr %.2e (%.0f s)" % (step, args.steps, loss.item(), lr,
                                                         time.time() - started), flush=True)
    train_seconds = time.time() - started
    ppl, n = perplexity(model, held_ids, args.ctx)
    print("held-out perplexity %.3f over %d predicted tokens (windows of %d)" % (ppl, n, args.ctx))

    manifest = os.path.join(work, "kjv-demo.manifest.json")
    write_manifest(manifest, model, args, vocab)
    with open(os.path.join(work, "kjv-demo.train.json"), "w") as f:
        json.dump({"perplexity": ppl, "predicted_tokens": n, "ctx": args.ctx,
                   "parameters": n_params, "steps": steps_done, "batch": args.batch,
                   "threads": args.threads, "seconds": round(train_seconds, 1),
                   "final_loss": loss.item()}, f, indent=1)
    if args.make_model:
        subprocess.run([args.make_model, "--import", manifest, "--dtype", args.dtype,
                        "--out", args.out], check=True)
        print("wrote", args.out)


if __name__ == "__main__":
    main()

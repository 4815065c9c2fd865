#!/usr/bin/python3
"""Writes a Hugging Face model directory from a GGUF Llama / Qwen2 / Mistral model: the
inverse of llama.cpp's convert_hf_to_gguf.py, for tests of llmq's safetensors loader.

Usage:
    gguf_to_safetensors.py MODEL.gguf OUT_DIR [--shards N] [--norm-dtype same|bf16|f16]
                           [--merges string|array] [--tokenizer-only]

Written from the formats' definitions (the safetensors format, Hugging Face's config.json and
tokenizer.json, the GGUF tensor conventions), not from llmq's code:
- tensors keep their bytes (F32/F16/BF16), so the directory holds exactly the GGUF's weights;
  names become the transformers names; 2-D shapes are PyTorch's [out, in] (GGUF's ne reversed);
- llama.cpp's converter permutes Llama's q_proj/k_proj rows from the half-split rotary order
  of Hugging Face into adjacent pairs: permute(w, n_head) =
  w.reshape(n_head, 2, head_dim // 2, in).swapaxes(1, 2).reshape(out, in). This writes the
  inverse (Qwen2 rotates half-split pairs in both formats and is copied as it is);
- rope_freqs.weight becomes rope_scaling {"rope_type": "llama3", ...} when it equals Llama
  3.1's factors (factor 8, low 1, high 4, original context 8192), computed here as
  transformers' _compute_llama3_parameters does; other factors are refused;
- a byte-level BPE vocabulary (tokenizer.ggml.model "gpt2") becomes tokenizer.json as the
  tokenizers library writes it (vocab, merges, added_tokens, the pre-tokenizer of its
  tokenizer.ggml.pre); a SentencePiece vocabulary (llmq-make-model's synthetic one) is
  replaced by a synthetic byte-level BPE vocabulary of the same size, the same special ids.

--norm-dtype rounds 1-D tensors (norms, biases) to BF16 or F16, as real checkpoints store
them (the weights then differ from the GGUF's in those tensors). --merges chooses the
"a b" string form (tokenizers < 0.20) or the ["a", "b"] array form of merges.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402  (its GGUF reader)

DTYPES = {ref.GGML_F32: ("F32", 4, "<f4"), ref.GGML_F16: ("F16", 2, "<u2"),
          ref.GGML_BF16: ("BF16", 2, "<u2")}

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA31_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def llama3_inv_freq(head_dim, base, s):
    """transformers' _compute_llama3_parameters, in float64."""
    inv_freq = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    low_wavelen = s["original_max_position_embeddings"] / s["low_freq_factor"]
    high_wavelen = s["original_max_position_embeddings"] / s["high_freq_factor"]
    wavelen = 2 * math.pi / inv_freq
    out = np.where(wavelen > low_wavelen, inv_freq / s["factor"], inv_freq)
    smooth = (s["original_max_position_embeddings"] / wavelen - s["low_freq_factor"]) / (
        s["high_freq_factor"] - s["low_freq_factor"])
    smoothed = (1 - smooth) * out / s["factor"] + smooth * out
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, out), inv_freq


def byte_alphabet():
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other
    bytes, in order, for U+0100 onwards."""
    printable = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    others = [b for b in range(256) if b not in printable]
    return [chr(b) if b in printable else chr(0x100 + others.index(b)) for b in range(256)]


def f32_to_half_bits(values, dtype):
    a = np.asarray(values, dtype=np.float32)
    if dtype == "f16":
        return a.astype("<f2").view("<u2")
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


class Converter:
    def __init__(self, gguf_path, args):
        self.g = ref.GGUFFile(gguf_path)
        self.md = self.g.metadata
        self.args = args
        self.arch = self.md["general.architecture"]
        if self.arch not in ("llama", "mistral", "qwen2"):
            raise SystemExit("architecture %r not supported" % self.arch)

    def hp(self, key, default=None):
        return self.md.get(self.arch + "." + key, default)

    def config(self):
        a = self.arch
        dim = int(self.hp("embedding_length"))
        heads = int(self.hp("attention.head_count"))
        cfg = {
            "architectures": [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                               "qwen2": "Qwen2ForCausalLM"}[a]],
            "model_type": a,
            "hidden_size": dim,
            "intermediate_size": int(self.hp("feed_forward_length")),
            "num_hidden_layers": int(self.hp("block_count")),
            "num_attention_heads": heads,
            "num_key_value_heads": int(self.hp("attention.head_count_kv", heads)),
            "max_position_embeddings": int(self.hp("context_length")),
            "rms_norm_eps": float(self.hp("attention.layer_norm_rms_epsilon")),
            "rope_theta": float(self.hp("rope.freq_base", 10000.0)),
            "hidden_act": "silu",
            "vocab_size": len(self.md["tokenizer.ggml.tokens"]),
            "tie_word_embeddings": not self.g.has("output.weight"),
            "torch_dtype": "bfloat16",
        }
        if self.hp("attention.key_length") is not None:
            cfg["head_dim"] = int(self.hp("attention.key_length"))
        head_dim = cfg.get("head_dim", dim // heads)
        if self.g.has("rope_freqs.weight"):
            factors = self.g.tensor("rope_freqs.weight").numpy()
            scaled, inv_freq = llama3_inv_freq(head_dim, cfg["rope_theta"], LLAMA31_SCALING)
            if not np.allclose(inv_freq / factors, scaled, rtol=1e-6, atol=0):
                raise SystemExit("rope_freqs.weight is not Llama 3.1's rope_scaling")
            cfg["rope_scaling"] = dict(LLAMA31_SCALING)
        if a == "mistral":
            cfg["sliding_window"] = int(self.hp("attention.sliding_window", 0)) or None
        if a == "qwen2":
            cfg["use_sliding_window"] = False
        for key, name in (("bos_token_id", "bos"), ("eos_token_id", "eos")):
            v = self.md.get("tokenizer.ggml." + name + "_token_id")
            if v is not None:
                cfg[key] = int(v)
        return cfg

    # ---------------------------------------------------------------- tensors

    def tensors(self, cfg):
        """[(HF name, dtype name, shape, bytes)] in a stable order."""
        heads = cfg["num_attention_heads"]
        kv_heads = cfg["num_key_value_heads"]
        names = [("token_embd.weight", "model.embed_tokens.weight"),
                 ("output_norm.weight", "model.norm.weight")]
        if self.g.has("output.weight"):
            names.append(("output.weight", "lm_head.weight"))
        per_layer = [("attn_norm.weight", "input_layernorm.weight"),
                     ("attn_q.weight", "self_attn.q_proj.weight"),
                     ("attn_k.weight", "self_attn.k_proj.weight"),
                     ("attn_v.weight", "self_attn.v_proj.weight"),
                     ("attn_output.weight", "self_attn.o_proj.weight"),
                     ("ffn_norm.weight", "post_attention_layernorm.weight"),
                     ("ffn_gate.weight", "mlp.gate_proj.weight"),
                     ("ffn_up.weight", "mlp.up_proj.weight"),
                     ("ffn_down.weight", "mlp.down_proj.weight"),
                     ("attn_q.bias", "self_attn.q_proj.bias"),
                     ("attn_k.bias", "self_attn.k_proj.bias"),
                     ("attn_v.bias", "self_attn.v_proj.bias")]
        for i in range(cfg["num_hidden_layers"]):
            for g_name, hf in per_layer:
                if self.g.has("blk.%d.%s" % (i, g_name)):
                    names.append(("blk.%d.%s" % (i, g_name), "model.layers.%d.%s" % (i, hf)))
        out = []
        for g_name, hf in names:
            ne, ttype, raw = self.g.tensors[g_name]
            if ttype not in DTYPES:
                raise SystemExit("tensor %s has ggml type %d; only F32/F16/BF16 convert" % (
                    g_name, ttype))
            dtype, size, np_dtype = DTYPES[ttype]
            shape = list(reversed(ne))
            a = np.frombuffer(raw, dtype=np_dtype).reshape(shape)
            if self.arch in ("llama", "mistral") and g_name.endswith(("attn_q.weight",
                                                                      "attn_k.weight")):
                n = heads if g_name.endswith("attn_q.weight") else kv_heads
                rows, cols = shape
                a = a.reshape(n, rows // n // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
            if len(shape) == 1 and self.args.norm_dtype != "same":
                values = ref.dequantize(ttype, raw, shape[0])
                a = f32_to_half_bits(values, self.args.norm_dtype)
                dtype = self.args.norm_dtype.upper()
            out.append((hf, dtype, shape, np.ascontiguousarray(a).tobytes()))
        return out

    @staticmethod
    def write_safetensors(path, tensors):
        header, offset = {}, 0
        for name, dtype, shape, raw in tensors:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
            offset += len(raw)
        header["__metadata__"] = {"format": "pt"}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((8 - len(text) % 8) % 8)  # data 8-byte aligned, as safetensors pads
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for _, _, _, raw in tensors:
                f.write(raw)

    # ---------------------------------------------------------------- tokenizer

    def tokenizer(self):
        md = self.md
        tokens = md["tokenizer.ggml.tokens"]
        types = md.get("tokenizer.ggml.token_type", [1] * len(tokens))
        if md["tokenizer.ggml.model"] == "gpt2":
            merges = md["tokenizer.ggml.merges"]
            pre = md.get("tokenizer.ggml.pre", "default")
        else:
            tokens, types, merges = self.synthetic_byte_level(tokens, types)
            pre = "llama-bpe"
        vocab, added = {}, []
        for i, (t, ty) in enumerate(zip(tokens, types)):
            if ty in (3, 4):
                added.append({"id": i, "content": t, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": ty == 4, "special": ty == 3})
            else:
                vocab[t] = i
        if pre in ("llama-bpe", "llama3", "llama-v3"):
            pre_tok = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False}]}
        elif pre == "qwen2":
            pre_tok = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                 "use_regex": False}]}
        elif pre in ("default", "gpt2", "gpt-2"):
            pre_tok = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                       "use_regex": True}
        else:
            raise SystemExit("tokenizer.ggml.pre %r has no tokenizer.json form here" % pre)
        bos = md.get("tokenizer.ggml.bos_token_id")
        add_bos = md.get("tokenizer.ggml.add_bos_token", False) and bos is not None
        post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                "use_regex": True}
        if add_bos:
            post = {"type": "Sequence", "processors": [
                post,
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": tokens[bos], "type_id": 0}},
                            {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": tokens[bos], "type_id": 0}},
                          {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": tokens[bos], "type_id": 1}},
                          {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {tokens[bos]: {"id": tokens[bos], "ids": [bos],
                                                  "tokens": [tokens[bos]]}}}]}
        if self.args.merges == "array":
            merges = [m.split(" ", 1) for m in merges]
        tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
               "normalizer": None, "pre_tokenizer": pre_tok, "post_processor": post,
               "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                           "use_regex": True},
               "model": {"type": "BPE", "dropout": None, "unk_token": None,
                         "continuing_subword_prefix": None, "end_of_word_suffix": None,
                         "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                         "vocab": vocab, "merges": merges}}
        eos = md.get("tokenizer.ggml.eos_token_id")
        tc = {"add_bos_token": bool(add_bos), "add_eos_token": False,
              "bos_token": tokens[bos] if bos is not None else None,
              "eos_token": tokens[eos] if eos is not None else None,
              "model_max_length": int(self.hp("context_length")),
              "tokenizer_class": "PreTrainedTokenizerFast"}
        if "tokenizer.chat_template" in md:
            tc["chat_template"] = md["tokenizer.chat_template"]
        return tok, tc

    @staticmethod
    def synthetic_byte_level(spm_tokens, spm_types):
        """A byte-level BPE vocabulary of len(spm_tokens) ids whose control tokens keep their
        ids and texts: the 256 byte characters, then merged pairs of them."""
        n = len(spm_tokens)
        special = {i: spm_tokens[i] for i, ty in enumerate(spm_types) if ty in (2, 3)}
        alphabet = byte_alphabet()
        tokens, types, merges = [None] * n, [1] * n, []
        for i, t in special.items():
            tokens[i], types[i] = t, 3
        free = [i for i in range(n) if tokens[i] is None]
        pieces = list(alphabet)
        pairs = ((a, b) for a in alphabet for b in alphabet)
        while len(pieces) < len(free):
            a, b = next(pairs)
            pieces.append(a + b)
            merges.append(a + " " + b)
        for i, p in zip(free, pieces):
            tokens[i] = p
        return tokens, types, merges

    # ---------------------------------------------------------------- output

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        cfg = self.config()
        tok, tc = self.tokenizer()
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False)
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=2)
        if self.args.tokenizer_only:
            return
        tensors = self.tensors(cfg)
        n = max(1, self.args.shards)
        if n == 1:
            self.write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
            return
        per = (len(tensors) + n - 1) // n
        weight_map, total = {}, 0
        for k in range(n):
            part = tensors[k * per:(k + 1) * per]
            name = "model-%05d-of-%05d.safetensors" % (k + 1, n)
            self.write_safetensors(os.path.join(out_dir, name), part)
            for t in part:
                weight_map[t[0]] = name
                total += len(t[3])
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gguf")
    ap.add_argument("out_dir")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--norm-dtype", choices=("same", "bf16", "f16"), default="same")
    ap.add_argument("--merges", choices=("string", "array"), default="string")
    ap.add_argument("--tokenizer-only", action="store_true")
    args = ap.parse_args(argv)
    Converter(args.gguf, args).write(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

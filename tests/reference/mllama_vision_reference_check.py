#!/usr/bin/python3
"""Llama 3.2 Vision (mllama) image features: llmq against a float64 PyTorch model written from
Hugging Face's published definitions, not from llmq's code.

  mllama_vision_reference_check.py LLMQ_MAKE_MODEL VISION_DUMP

The reference follows transformers' models/mllama:
  * image_processing_mllama.py: get_all_supported_aspect_ratios (pairs (a, b), a read as the
    tile rows by get_optimal_tiled_canvas), get_optimal_tiled_canvas (the smallest scale >= 1,
    else the largest; the least area among equals), get_image_size_fit_to_canvas, resize with
    PIL's BILINEAR, pad with 0 at the bottom and right, rescale (float64 * 1/255 stored as
    float32), normalize in float32, split_to_tiles (row-major), pack_images (zero tiles up to
    max_image_tiles), convert_aspect_ratios_to_ids (index + 1), build_aspect_ratio_mask;
  * modeling_mllama.py, MllamaVisionModel.forward: the patch conv, pre_tile_positional_embedding
    (gated, patches only), the class token, MllamaPrecomputedPositionEmbedding ((1 - tanh g)
    position + tanh g tile position), layernorm_pre (nn.LayerNorm's eps), the pad of each tile
    to a multiple of 8, _prepare_aspect_ratio_attention_mask, the local encoder with
    output_hidden_states (the intermediate layers are indices into them), layernorm_post,
    post_tile_positional_embedding, the gated global encoder (tanh(gate_attn), tanh(gate_ffn)),
    the padding sliced off, torch.stack(intermediate, dim=-1) reshaped and concatenated after
    the final state; then MllamaForConditionalGeneration's multi_modal_projector (Linear).
The HF parameters are taken from the GGUF as Ollama's convert_mllama.go writes them: its tensor
names (mlp.fc1 -> ffn_up, mlp.fc2 -> ffn_down, o_proj -> attn_output, input_layernorm ->
attn_norm, post_attention_layernorm -> ffn_norm) and its gates stored through tanh (and
1 - tanh for v.position_embd.gate), so g = atanh(stored). The converter also reorders the rows
of q_proj and k_proj inside each head (a RoPE permutation the encoder does not need); the same
order on both leaves every q.k, so the reference uses the rows as stored.
Three shapes (the last with Llama 3.2 Vision's 560/14 tiles); images that pick wide, tall,
square, upscaled and downscaled canvases.
"""

import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402  (its GGUF reader)
import vision_reference_check as clip_ref  # noqa: E402  (its PNG writer and Pillow resampler)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# ------------------------------------------------------------------ preprocessing (HF)

def supported_aspect_ratios(max_tiles):
    return [(a, b) for a in range(1, max_tiles + 1) for b in range(1, max_tiles + 1) if a * b <= max_tiles]


def optimal_tiled_canvas(image_height, image_width, max_tiles, tile_size):
    canvases = np.array(supported_aspect_ratios(max_tiles)) * tile_size
    target_heights, target_widths = canvases.T
    scale_h = target_heights / image_height
    scale_w = target_widths / image_width
    scales = np.where(scale_w > scale_h, scale_h, scale_w)
    up = scales[scales >= 1]
    selected = np.min(up) if len(up) > 0 else np.max(scales[scales < 1])
    chosen = canvases[scales == selected]
    return chosen[np.argmin(chosen[:, 0] * chosen[:, 1])] if len(chosen) > 1 else chosen[0]


def fit_to_canvas(image_height, image_width, canvas_height, canvas_width, tile_size):
    target_width = np.clip(image_width, tile_size, canvas_width)
    target_height = np.clip(image_height, tile_size, canvas_height)
    scale_h = target_height / image_height
    scale_w = target_width / image_width
    if scale_w < scale_h:
        return min(math.floor(image_height * scale_w), target_height), target_width
    return target_height, min(math.floor(image_width * scale_h), target_width)


def preprocess(rgb, tile, max_tiles, mean, std):
    """-> pixel_values [max_tiles][3][tile][tile] float64 (of float32 values), aspect-ratio id,
    aspect_ratio_mask [max_tiles], (tiles high, tiles wide), (resized width, height)."""
    h, w, _ = rgb.shape
    canvas_h, canvas_w = optimal_tiled_canvas(h, w, max_tiles, tile)
    high, wide = canvas_h // tile, canvas_w // tile
    new_h, new_w = fit_to_canvas(h, w, canvas_h, canvas_w, tile)
    resized = clip_ref.pil_resize(rgb, int(new_w), int(new_h), clip_ref.BILINEAR)
    padded = np.zeros((canvas_h, canvas_w, 3), dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    x = (padded.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    x = x.transpose(2, 0, 1)  # [3][H][W]
    tiles = x.reshape(3, high, tile, wide, tile).transpose(1, 3, 0, 2, 4).reshape(high * wide, 3, tile, tile)
    pixels = np.zeros((max_tiles, 3, tile, tile), dtype=np.float32)
    pixels[:high * wide] = tiles
    ratio_id = supported_aspect_ratios(max_tiles).index((high, wide)) + 1
    mask = np.zeros(max_tiles, dtype=np.int64)
    mask[0] = 1
    mask[:high * wide] = 1
    return torch.from_numpy(pixels.astype(np.float64)), ratio_id, mask, (high, wide), (int(new_w), int(new_h))


# ------------------------------------------------------------------ the model (HF)

class MllamaVisionReference:
    def __init__(self, path):
        g = ref.GGUFFile(path)
        m = g.metadata
        k = "mllama.vision."
        self.g = g
        self.tile = m[k + "image_size"]
        self.patch = m[k + "patch_size"]
        self.dim = m[k + "embedding_length"]
        self.heads = m[k + "attention.head_count"]
        self.eps = float(m[k + "attention.layer_norm_epsilon"])
        self.layers = m[k + "block_count"]
        self.global_layers = m[k + "global.block_count"]
        self.max_tiles = m[k + "max_num_tiles"]
        self.intermediate = list(m[k + "intermediate_layers_indices"])
        self.num_patches = (self.tile // self.patch) ** 2 + 1
        # One HF parameter, written twice by the converter: check they agree.
        g_pos = self.gate("v.tile_position_embd.gate")
        stored = self.t("v.position_embd.gate").item()
        assert abs((1 - math.tanh(g_pos)) - stored) < 1e-6, "position gates disagree"
        self.position_gate = g_pos

    def t(self, name):
        return self.g.tensor(name)

    def gate(self, name):
        """HF's gate parameter g from the stored tanh(g)."""
        return math.atanh(self.t(name).item())

    def layer_norm(self, x, prefix, eps):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.t(prefix + ".weight"), self.t(prefix + ".bias"),
                                              eps)

    def linear(self, x, prefix, bias=True):
        y = x @ self.t(prefix + ".weight").T
        return y + self.t(prefix + ".bias") if bias else y

    def encoder_layer(self, x, b, mask, gated):
        h = self.layer_norm(x, b + "attn_norm", self.eps)
        n, d = h.shape
        hd = d // self.heads
        q = self.linear(h, b + "attn_q", False).view(n, self.heads, hd).transpose(0, 1)
        k = self.linear(h, b + "attn_k", False).view(n, self.heads, hd).transpose(0, 1)
        v = self.linear(h, b + "attn_v", False).view(n, self.heads, hd).transpose(0, 1)
        w = q @ k.transpose(1, 2) / math.sqrt(hd) + mask
        att = torch.softmax(w, dim=-1) @ v
        h = self.linear(att.transpose(0, 1).reshape(n, d), b + "attn_output", False)
        x = x + (math.tanh(self.gate(b + "attn_gate")) * h if gated else h)
        h = self.layer_norm(x, b + "ffn_norm", self.eps)
        h = self.linear(torch.nn.functional.gelu(self.linear(h, b + "ffn_up")), b + "ffn_down")
        return x + (math.tanh(self.gate(b + "ffn_gate")) * h if gated else h)

    def forward(self, pixels, ratio_id, ratio_mask, variant=None):
        """cross_attention_states [max_tiles][num_patches][text dim]. variant: None, or
        "no_mask" / "layer_major" (what a wrong mask or concatenation order would give)."""
        T, D, P = self.max_tiles, self.dim, self.num_patches
        x = torch.nn.functional.conv2d(pixels, self.t("v.patch_embd.weight"), stride=self.patch)
        x = x.flatten(2).transpose(1, 2)  # [T][P-1][D]
        pre = self.t("v.pre_tile_position_embd.weight")[ratio_id].reshape(T, 1, D)
        x = x + pre * math.tanh(self.gate("v.pre_tile_position_embd.gate"))
        x = torch.cat([self.t("v.class_embd").expand(T, 1, D), x], dim=1)  # [T][P][D]
        g = self.position_gate
        x = x + (1 - math.tanh(g)) * self.t("v.position_embd.weight").view(1, P, D)
        x = x + math.tanh(g) * self.t("v.tile_position_embd.weight")[ratio_id].reshape(T, P, D)
        x = self.layer_norm(x, "v.pre_ln", 1e-5)
        pad = (8 - P % 8) % 8
        x = torch.nn.functional.pad(x, (0, 0, 0, pad))
        target = P + pad
        # _prepare_aspect_ratio_attention_mask (pad > 0 in both shapes: with pad == 0 HF's
        # attention_mask[:, :, -0:] would mark every row as padding)
        m = torch.from_numpy(ratio_mask).to(torch.float64).view(T, 1, 1).repeat(1, target, 1)
        m[:, -pad:] = 0
        m = (1 - m).reshape(T * target, 1)
        mask = m @ m.T * torch.finfo(torch.float64).min
        if variant == "no_mask":
            mask = torch.zeros_like(mask)
        x = x.reshape(T * target, D)
        states = []
        for l in range(self.layers):
            states.append(x)
            x = self.encoder_layer(x, "v.blk.%d." % l, mask, False)
        states.append(x)
        x = self.layer_norm(x, "v.post_ln", 1e-5).reshape(T, target, D)
        post = self.t("v.post_tile_position_embd.weight")[ratio_id].reshape(T, 1, D)
        x = (x + post * math.tanh(self.gate("v.post_tile_position_embd.gate"))).reshape(T * target, D)
        for l in range(self.global_layers):
            x = self.encoder_layer(x, "v.global.blk.%d." % l, mask, True)
        x = x.reshape(T, target, D)[:, :P]
        kept = torch.stack([states[i] for i in self.intermediate], dim=-1)  # [N][D][K]
        if variant == "layer_major":
            kept = kept.transpose(1, 2)
        kept = kept.reshape(T, target, -1)[:, :P]
        return self.linear(torch.cat([x, kept], dim=-1), "mm.0")


# ------------------------------------------------------------------ the check

SHAPES = [
    # name, make-model args, images (width, height)
    ("28/7 4 tiles f32", ["--dim", "32", "--heads", "2", "--layers", "4", "--global-layers", "2", "--ffn", "64",
                          "--image-size", "28", "--patch-size", "7", "--max-tiles", "4", "--intermediate-layers",
                          "1,3", "--projection-dim", "48", "--seed", "3"],
     [(61, 23), (50, 120), (100, 70), (20, 20), (200, 45)]),
    ("30/6 2 tiles f16", ["--dim", "48", "--heads", "3", "--layers", "3", "--global-layers", "1", "--ffn", "80",
                          "--image-size", "30", "--patch-size", "6", "--max-tiles", "2", "--intermediate-layers",
                          "0,2,3", "--projection-dim", "40", "--dtype", "f16", "--seed", "5"],
     [(45, 100), (31, 29)]),
    # Llama 3.2 Vision's tile geometry (560/14: 1601 rows per tile padded to 1608, 4 tiles)
    # on a narrow encoder, one photo-sized image shrunk onto the 2x2 canvas.
    ("560/14 4 tiles f16", ["--dim", "64", "--heads", "2", "--layers", "2", "--global-layers", "1", "--ffn", "128",
                            "--image-size", "560", "--patch-size", "14", "--max-tiles", "4", "--intermediate-layers",
                            "1,2", "--projection-dim", "96", "--dtype", "f16", "--seed", "9"],
     [(1300, 700)]),
]


def main(argv):
    torch.set_num_threads(1)
    maker, dump = argv[1], argv[2]
    rng = np.random.default_rng(17)
    failures = 0
    grids_seen = set()
    with tempfile.TemporaryDirectory() as tmp:
        for name, args, images in SHAPES:
            path = os.path.join(tmp, "mllama.gguf")
            subprocess.run([maker, "--mllama-vision", "--out", path] + args, check=True, capture_output=True)
            model = MllamaVisionReference(path)
            for w, h in images:
                rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                png = os.path.join(tmp, "img.png")
                clip_ref.write_png(png, rgb)
                out = os.path.join(tmp, "out")
                r = subprocess.run([dump, path, png, out], capture_output=True, text=True)
                if r.returncode != 0:
                    print("FAIL %s %dx%d: vision_dump: %s" % (name, w, h, r.stderr.strip()))
                    failures += 1
                    continue
                pixels, ratio_id, mask, grid, resized = preprocess(rgb, model.tile, model.max_tiles, CLIP_MEAN,
                                                                   CLIP_STD)
                info = [int(v) for v in open(out + ".info").read().split()]
                want_info = [ratio_id, int(mask.sum()), grid[0], grid[1], resized[0], resized[1]]
                got_pixels = torch.from_numpy(np.fromfile(out + ".pixels", dtype="<f4").astype(np.float64))
                pixel_error = (got_pixels - pixels.flatten()).abs().max().item()
                with torch.no_grad():
                    want = model.forward(pixels, ratio_id, mask)
                    no_mask = model.forward(pixels, ratio_id, mask, "no_mask")
                    layer_major = model.forward(pixels, ratio_id, mask, "layer_major")
                got = torch.from_numpy(np.fromfile(out + ".embd", dtype="<f4").astype(np.float64)).view(want.shape)
                scale = want.abs().max().item()
                error = (got - want).abs().max().item() / scale
                # What a wrong mask or concatenation would change (the real tiles' rows only,
                # which the text attends to; a 1x1 grid of a 1-tile model has no padded tiles).
                real = int(mask.sum())
                miss_mask = (no_mask - want)[:real].abs().max().item() / scale
                miss_order = (layer_major - want)[:real].abs().max().item() / scale
                # f32 arithmetic through a few layers of a few hundred terms: 1e-4 of the
                # largest value; the pixels are the same float32 values on both sides.
                # (With every tile real and 7 padding rows in 1608 the mask moves the features
                # by about 2e-5 only; the images with padded tiles are where it must show.)
                mask_shows = miss_mask > 1e-3 or real == model.max_tiles
                ok = (info == want_info and pixel_error <= 1e-6 and error <= 1e-4 and mask_shows and
                      miss_order > 1e-3)
                grids_seen.add(grid)
                print("%s %s %dx%d: grid %dx%d id %d resized %dx%d (llmq: id %d, %d tiles, %dx%d, %dx%d); pixels "
                      "max error %.2e, features max error %.2e of max |ref| %.3f (no mask: %.2e, layer-major "
                      "concatenation: %.2e)" % ("ok  " if ok else "FAIL", name, w, h, grid[0], grid[1], ratio_id,
                                                resized[0], resized[1], info[0], info[1], info[2], info[3], info[4],
                                                info[5], pixel_error, error, scale, miss_mask, miss_order))
                failures += 0 if ok else 1
    if not any(g[0] * g[1] > 1 and g[0] != g[1] for g in grids_seen):
        print("FAIL: no image picked a non-square tile grid")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""LLaVA-1.5 image embeddings: llmq against a float64 PyTorch model written from the
published definitions, not from llmq's code.

  vision_reference_check.py LLMQ_MAKE_MODEL VISION_DUMP

The reference follows:
  * LLaVA's expand2square (llava/mm_utils.py): the image centred on a square canvas of its
    longer side, filled with tuple(int(x * 255) for x in image_mean);
  * CLIPImageProcessor: PIL's bicubic resize to image_size (Pillow's ImagingResample: support
    2 * max(scale, 1), a = -0.5, taps at (x - center + 0.5) * (1 / filterscale), 22-bit
    fixed-point weights, horizontal pass then vertical, each rounded to bytes), rescale 1/255,
    normalise with image_mean / image_std;
  * Hugging Face CLIPVisionTransformer: [CLS; conv patches] + positions, pre_layrnorm, encoder
    layers x = x + attn(ln1(x)), x = x + mlp(ln2(x)) with quick_gelu or gelu;
  * LLaVA: the hidden state of the feature layer (hidden_states[-2] by default: the output of
    all layers but the last), the CLS row dropped ("default" select strategy), then the MLP
    projector linear -> GELU (erf) -> linear.
Tensor names are those of llama.cpp's convert_image_encoder_to_gguf.py (fc1 = ffn_down,
fc2 = ffn_up). Two encoder shapes, two non-square random images each.
"""

import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402  (its GGUF reader; the model below is this file's)


# ------------------------------------------------------------------ images

def write_png(path, rgb):
    """rgb: uint8 [h][w][3]. An 8-bit RGB PNG, filter 0 on every row."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def expand2square(rgb, background):
    h, w, _ = rgb.shape
    if w == h:
        return rgb
    side = max(w, h)
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:, :] = background
    y0, x0 = (side - h) // 2, (side - w) // 2
    out[y0:y0 + h, x0:x0 + w] = rgb
    return out


PRECISION_BITS = 32 - 8 - 2


def bicubic_filter(x):
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def bilinear_filter(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


BICUBIC = (bicubic_filter, 2.0)
BILINEAR = (bilinear_filter, 1.0)


def resample_coefficients(in_size, out_size, kind=BICUBIC):
    """Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis."""
    filt, filter_support = kind
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filter_support * filterscale
    ss = 1.0 / filterscale
    bounds, weights = [], []
    for i in range(out_size):
        center = (i + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        k = [filt((x - center + 0.5) * ss) for x in range(xmin, xmax)]
        total = sum(k)
        fixed = []
        for v in k:
            v = (v / total if total != 0 else 0.0) * (1 << PRECISION_BITS)
            fixed.append(int(np.trunc(-0.5 + v)) if v < 0 else int(np.trunc(0.5 + v)))
        bounds.append(xmin)
        weights.append(fixed)
    return bounds, weights


def resample_axis(img, out_size, axis, kind=BICUBIC):
    """One 8-bit pass along axis (1: horizontal, 0: vertical), as Pillow's."""
    bounds, weights = resample_coefficients(img.shape[axis], out_size, kind)
    src = np.moveaxis(img.astype(np.int64), axis, 0)
    out = np.empty((out_size,) + src.shape[1:], dtype=np.int64)
    for i in range(out_size):
        acc = np.full(src.shape[1:], 1 << (PRECISION_BITS - 1), dtype=np.int64)
        for j, k in enumerate(weights[i]):
            acc += src[bounds[i] + j] * k
        out[i] = np.clip(acc >> PRECISION_BITS, 0, 255)
    return np.moveaxis(out, 0, axis).astype(np.uint8)


def pil_resize(rgb, width, height, kind):
    """Image.resize((width, height), filter) on an RGB image: horizontal pass, then vertical,
    each only where the size changes."""
    if rgb.shape[1] != width:
        rgb = resample_axis(rgb, width, 1, kind)
    if rgb.shape[0] != height:
        rgb = resample_axis(rgb, height, 0, kind)
    return rgb


def preprocess(rgb, size, mean, std):
    square = pil_resize(expand2square(rgb, tuple(int(m * 255) for m in mean)), size, size, BICUBIC)
    x = square.astype(np.float32) * np.float32(1 / 255)
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).astype(np.float64))  # [3][S][S]


# ------------------------------------------------------------------ the model

class LlavaClipReference:
    def __init__(self, path, layers_override=None):
        g = ref.GGUFFile(path)
        m = g.metadata
        self.g = g
        self.size = m["clip.vision.image_size"]
        self.patch = m["clip.vision.patch_size"]
        self.heads = m["clip.vision.attention.head_count"]
        self.eps = float(m["clip.vision.attention.layer_norm_epsilon"])
        self.gelu = bool(m["clip.use_gelu"])
        self.mean = list(m["clip.vision.image_mean"])
        self.std = list(m["clip.vision.image_std"])
        n_layer = m["clip.vision.block_count"]
        if "clip.vision.feature_layer" in m:
            self.layers = list(m["clip.vision.feature_layer"])[0]
        else:
            self.layers = n_layer - 1  # hidden_states[-2]
        if layers_override is not None:
            self.layers = layers_override

    def t(self, name):
        return self.g.tensor(name)

    def ln(self, x, prefix):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.t(prefix + ".weight"), self.t(prefix + ".bias"),
                                              self.eps)

    def linear(self, x, prefix):
        return x @ self.t(prefix + ".weight").T + self.t(prefix + ".bias")

    def act(self, x):
        if self.gelu:
            return torch.nn.functional.gelu(x)
        return x * torch.sigmoid(1.702 * x)  # quick_gelu

    def embeddings(self, pixels):
        w = self.t("v.patch_embd.weight")  # [D][3][p][p]
        patches = torch.nn.functional.conv2d(pixels[None], w, stride=self.patch)  # [1][D][g][g]
        patches = patches.flatten(2).transpose(1, 2)[0]  # [P][D]
        x = torch.cat([self.t("v.class_embd")[None], patches], dim=0)
        x = x + self.t("v.position_embd.weight")
        x = self.ln(x, "v.pre_ln")
        T, D = x.shape
        hd = D // self.heads
        for l in range(self.layers):
            b = "v.blk.%d." % l
            h = self.ln(x, b + "ln1")
            q = self.linear(h, b + "attn_q").view(T, self.heads, hd).transpose(0, 1)
            k = self.linear(h, b + "attn_k").view(T, self.heads, hd).transpose(0, 1)
            v = self.linear(h, b + "attn_v").view(T, self.heads, hd).transpose(0, 1)
            att = torch.softmax(q @ k.transpose(1, 2) * hd ** -0.5, dim=-1) @ v
            x = x + self.linear(att.transpose(0, 1).reshape(T, D), b + "attn_out")
            h = self.ln(x, b + "ln2")
            x = x + self.linear(self.act(self.linear(h, b + "ffn_down")), b + "ffn_up")
        x = x[1:]  # drop CLS
        y = torch.nn.functional.gelu(self.linear(x, "mm.0"))
        return self.linear(y, "mm.2")


# ------------------------------------------------------------------ the check

SHAPES = [
    # name, make-model args
    ("vit-quick-gelu-28/14", ["--dim", "32", "--heads", "2", "--layers", "3", "--ffn", "64", "--image-size", "28",
                              "--patch-size", "14", "--projection-dim", "48", "--seed", "3"]),
    ("vit-gelu-30/6-f16-all-layers", ["--dim", "48", "--heads", "3", "--layers", "4", "--ffn", "80", "--image-size",
                                      "30", "--patch-size", "6", "--projection-dim", "40", "--gelu", "--dtype", "f16",
                                      "--patch-f16", "--feature-layer", "4", "--seed", "5"]),
]


def main(argv):
    maker, dump = argv[1], argv[2]
    rng = np.random.default_rng(11)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in SHAPES:
            clip = os.path.join(tmp, "clip.gguf")
            subprocess.run([maker, "--clip", "--out", clip] + args, check=True, capture_output=True)
            model = LlavaClipReference(clip)
            for w, h in [(37, 23), (19, 41)]:
                rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                png = os.path.join(tmp, "img.png")
                write_png(png, rgb)
                out = os.path.join(tmp, "out")
                r = subprocess.run([dump, clip, png, out], capture_output=True, text=True)
                if r.returncode != 0:
                    print("FAIL %s %dx%d: vision_dump: %s" % (name, w, h, r.stderr.strip()))
                    failures += 1
                    continue
                got_pixels = torch.from_numpy(np.fromfile(out + ".pixels", dtype="<f4").astype(np.float64))
                want_pixels = preprocess(rgb, model.size, model.mean, model.std)
                pixel_error = (got_pixels - want_pixels.flatten()).abs().max().item()
                with torch.no_grad():
                    want = model.embeddings(want_pixels)
                    # The same model one layer deeper: what a wrong feature layer would give.
                    other = LlavaClipReference(clip, layers_override=model.layers - 1).embeddings(want_pixels)
                got = torch.from_numpy(np.fromfile(out + ".embd", dtype="<f4").astype(np.float64)).view(want.shape)
                scale = want.abs().max().item()
                error = (got - want).abs().max().item() / scale
                wrong_layer = (other - want).abs().max().item() / scale
                # f32 arithmetic over a few hundred terms per dot product and a few layers:
                # 1e-4 of the largest value; the pixels are the same integers on both sides.
                ok = pixel_error <= 1e-6 and error <= 1e-4 and wrong_layer > 1e-2
                print("%s %s %dx%d: pixels max error %.2e, embeddings max error %.2e of max |ref| %.3f "
                      "(another feature layer differs by %.2e)" % ("ok  " if ok else "FAIL", name, w, h, pixel_error,
                                                                    error, scale, wrong_layer))
                failures += 0 if ok else 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

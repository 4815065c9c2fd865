#!/usr/bin/python3
"""The demo model's pipeline, end to end, and the committed demo model.

Usage: demo_model_test.py LLMQ_CLI LLMQ_MAKE_MODEL SOURCE_ROOT

1. tools/train-demo/train_demo.py trains a tiny Llama for two steps on the KJV text (Debian's
   bible-kjv), writes it with `llmq-make-model --import` as F32, and reports its held-out
   perplexity from PyTorch. `llmq perplexity` on the held-out text the script wrote must give
   the same figure: the same tokens (llmq's SentencePiece tokenizer against the script's
   encoder), the same weights through the importer, the same windows.
2. The committed models/kjv-demo.gguf scores its committed held-out text
   (models/kjv-demo-heldout.txt) at the perplexity recorded beside it (models/kjv-demo.json,
   from the training script), and greedy text from it is English words, not byte soup.
Skips (77) where /usr/bin/bible is missing (part 1 only).
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile


def run(cmd, timeout=600):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit("failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-3000:]))
    return p.stdout


def perplexity(llmq, model, text_file, ctx):
    out = run([llmq, "perplexity", "--model", model, "--file", text_file, "--ctx-size", str(ctx), "--json"])
    return json.loads(out.strip().splitlines()[-1])


def pipeline(llmq, maker, root, problems):
    if not os.path.exists("/usr/bin/bible"):
        return False
    script = os.path.join(root, "tools", "train-demo", "train_demo.py")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "tiny.gguf")
        run(["/usr/bin/python3", script, "--make-model", maker, "--out", out, "--dtype", "f32",
             "--vocab", "320", "--dim", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1",
             "--ffn", "64", "--ctx", "32", "--batch", "2", "--steps", "2", "--threads", "1"])
        with open(os.path.join(tmp, "kjv-demo.train.json")) as f:
            want = json.load(f)
        got = perplexity(llmq, out, os.path.join(tmp, "kjv-heldout.txt"), want["ctx"])
        print("tiny model: training script perplexity %.5f over %d tokens; llmq %.5f over %d" % (
            want["perplexity"], want["predicted_tokens"], got["perplexity"], got["predicted_tokens"]))
        if got["predicted_tokens"] != want["predicted_tokens"]:
            problems.append("llmq predicts %d held-out tokens, the script %d: the tokenizations differ" % (
                got["predicted_tokens"], want["predicted_tokens"]))
        # Both F32: only the order of float32 sums differs.
        if abs(math.log(got["perplexity"]) - math.log(want["perplexity"])) > 1e-4:
            problems.append("tiny model: llmq's perplexity %.6f differs from the script's %.6f" % (
                got["perplexity"], want["perplexity"]))
    return True


def committed(llmq, root, problems):
    model = os.path.join(root, "models", "kjv-demo.gguf")
    with open(os.path.join(root, "models", "kjv-demo.json")) as f:
        info = json.load(f)
    got = perplexity(llmq, model, os.path.join(root, "models", "kjv-demo-heldout.txt"), info["ctx"])
    print("kjv-demo.gguf: llmq perplexity %.4f over %d tokens; the training script's %.4f over %d" % (
        got["perplexity"], got["predicted_tokens"], info["perplexity"], info["predicted_tokens"]))
    if got["predicted_tokens"] != info["predicted_tokens"]:
        problems.append("kjv-demo: %d predicted tokens, the script counted %d" % (
            got["predicted_tokens"], info["predicted_tokens"]))
    # The file holds F16 weights, the script measured its float32 ones: rounding the weights
    # to F16 moves the perplexity by well under 1 %.
    if abs(math.log(got["perplexity"]) - math.log(info["perplexity"])) > 0.01:
        problems.append("kjv-demo: llmq's perplexity %.4f is not within 1 %% of the script's %.4f" % (
            got["perplexity"], info["perplexity"]))
    text = run([llmq, "run", "--model", model, "--prompt", "And God said", "--max-tokens", "40",
                "--temperature", "0"])
    print("greedy: %r" % text)
    words = re.findall(r"[A-Za-z]+", text)
    known = {"the", "and", "of", "to", "that", "unto", "in", "he", "shall", "lord", "god", "is",
             "his", "i", "a", "for", "they", "be", "it", "him", "not", "them", "with", "all",
             "said", "was", "thou", "thy", "which", "my", "me", "ye", "their", "upon", "have"}
    if len(words) < 10 or sum(w.lower() in known for w in words) < len(words) // 4:
        problems.append("kjv-demo's greedy text does not read as the KJV: %r" % text)


def main(argv):
    llmq, maker, root = argv[1], argv[2], argv[3]
    problems = []
    ran = pipeline(llmq, maker, root, problems)
    if not ran:
        print("training pipeline: skipped (no /usr/bin/bible; install bible-kjv)")
    committed(llmq, root, problems)
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

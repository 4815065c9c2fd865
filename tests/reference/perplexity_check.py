#!/usr/bin/python3
"""`llmq perplexity` against the float64 reference (llama_reference.py).

Usage: perplexity_check.py LLMQ_CLI LLMQ_MAKE_MODEL

A small random model scores a text. llmq tokenizes it (`llmq tokenize --json`, the same
tokenizer `perplexity` uses) and the reference computes, for the same consecutive windows of
CTX tokens, the mean negative log-likelihood of every token but each window's first, from its
own causal forward in float64. The daemon's step holds only 4 logit rows here
([scheduler] max_running_sequences = 4), so every window runs as several chunks whose later
ones read the earlier ones' KV: a wrong position, a stale KV block or a mis-aligned logit row
moves the figure by far more than the tolerance. Exits non-zero on any difference.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

CTX = 11
# Mean NLL tolerance: f32 weights and KV leave ~5e-6 on each logit (reference_check.py), so the
# log-softmax moves by about as much; 1e-4 is 20x that, while shifting each predicted target by
# one position or restarting the KV at every chunk changes the mean NLL by more than 0.1.
TOL = 1e-4

TEXT = ("In the beginning was the word, and the word was with the tokens; and every token "
        "but the first of each window is predicted from those before it. " * 3)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if p.returncode != 0:
        sys.exit("failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-2000:]))
    return p.stdout


def main(argv):
    llmq, maker = argv[1], argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "m.gguf")
        run([maker, "--out", model, "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads",
             "2", "--ffn", "128", "--vocab", "400", "--seed", "11"])
        text_file = os.path.join(tmp, "t.txt")
        with open(text_file, "w") as f:
            f.write(TEXT)
        config = os.path.join(tmp, "c.toml")
        with open(config, "w") as f:
            f.write('[kv_cache]\ndtype = "f32"\n[scheduler]\nmax_running_sequences = 4\n')
        ids = json.loads(run([llmq, "tokenize", "--model", model, "--text", TEXT, "--json"]))
        got = json.loads(run([llmq, "perplexity", "--model", model, "--file", text_file,
                              "--config", config, "--ctx-size", str(CTX), "--json"]).strip().splitlines()[-1])

        m = ref.LlamaReference(model)
        nll, n, windows = 0.0, 0, 0
        with torch.no_grad():
            for start in range(0, len(ids) - 1, CTX):
                w = ids[start:start + CTX]
                if len(w) < 2:
                    break
                logp = torch.log_softmax(m.forward(w), dim=-1)
                nll -= sum(float(logp[i, w[i + 1]]) for i in range(len(w) - 1))
                n += len(w) - 1
                windows += 1
        want = nll / n
        print("reference: mean NLL %.6f (perplexity %.4f) over %d tokens in %d windows" % (
            want, math.exp(want), n, windows))
        print("llmq:      mean NLL %.6f (perplexity %.4f) over %d tokens in %d windows" % (
            got["mean_nll"], got["perplexity"], got["predicted_tokens"], got["windows"]))
        problems = []
        if got["tokens"] != len(ids):
            problems.append("llmq scored %d tokens, the tokenizer gives %d" % (got["tokens"], len(ids)))
        if got["predicted_tokens"] != n or got["windows"] != windows:
            problems.append("predicted tokens / windows differ")
        if abs(got["mean_nll"] - want) > TOL:
            problems.append("mean NLL differs by %.3g (tolerance %.3g)" % (abs(got["mean_nll"] - want), TOL))
        if abs(math.log(got["perplexity"]) - got["mean_nll"]) > 1e-9:
            problems.append("perplexity is not exp(mean NLL)")
        for p in problems:
            print("FAIL:", p)
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""llmq's logits and greedy tokens against the float64 reference (llama_reference.py).

Usage: reference_check.py LLMQ_CLI LLMQ_MAKE_MODEL

For each case: make a small random model with llmq-make-model, run
`llmq run --prompt-tokens ... --temperature 0 --json --ignore-eos --logits-out F.bin`,
and compare the prompt's last-position logits with the reference (max |difference| within the
case's tolerance) and llmq's greedy tokens with the reference's. A differing token is excused
only at a near tie: where the reference's top-2 margin is within twice the tolerance, both
choices are consistent with logits that are each within tolerance; the case reports it and
compares no further (the sequences have diverged). Anything else fails.

Prints one line per case and `N passed, M failed`; exits non-zero when any case failed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

MAX_TOKENS = 8
RUN_TIMEOUT_S = 120
# Each case runs llmq with its CPU kernels capped at each ISA in turn (LLMQ_CPU_ISA); on a CPU
# without one, llmq runs the best ISA below it, so the case still holds there.
ISAS = ("scalar", "avx2", "avx512", "avx512_bf16")

# Tolerances on max |llmq logit - reference logit|. The model maker's random models have logits
# of standard deviation ~1 and max |logit| ~3-4. The figures quoted were measured by running this
# reference's forward with the named approximation injected, on 2-3 layer models of dim 128-256
# with a 41-token prompt (max error over 300 logits):
#   all arithmetic in f32 instead of f64 ............................. 2e-6 .. 5e-6
#   + K and V rounded to f16 (an f16 KV cache) ......................... 1.2e-3 .. 1.7e-3
#   + activations rounded to f16 before each matmul .................... 2.4e-3 .. 2.8e-3
#   + activations quantized to Q8_0 blocks before each matmul ........... 5.8e-2 .. 7.8e-2
#
# F32 weights, f32 KV cache: only the order and width of f32 accumulation differ from the
# reference (~5e-6); 1e-4 leaves 20x for blocked/vectorized summation orders and approximate
# exp in softmax/SiLU, yet catches any real mistake (those move logits by 1e-2 .. 1).
TOL_F32 = 1e-4
# F16 and BF16 weights widen exactly to f32, so with f32 activations and an f32 KV cache the
# error is the same f32 accumulation error as above. 1e-3 (the brief's figure) also allows
# coarser accumulation (e.g. pairwise f32 sums in a different order over long rows), but not
# rounding the activations to f16 (2.5e-3) or bf16 (2e-2) before the dot products.
TOL_HALF = 1e-3
# Default f16 KV cache: rounding K and V to f16 alone moves logits by up to 1.7e-3 (above);
# 5e-3 is 3x that.
TOL_KV_F16 = 5e-3
# Q8_0 weights: llmq may quantize activations to Q8_0 blocks for an integer dot product, as
# llama.cpp does; that alone moves logits by up to ~7.8e-2 at max |logit| ~3.6, i.e. ~2% of
# the logit scale. The tolerance is 5% of the largest |logit| (about 0.18 here), 2.5x that.
Q8_REL_TOL = 5e-2


def case(name, maker_args, prompt, kv="f32", tol=None, q8=False, vocab_from=None):
    return {"name": name, "maker": maker_args, "prompt": prompt, "kv": kv, "tol": tol,
            "q8": q8, "vocab_from": vocab_from}


def cases():
    # Prompts are arithmetic sequences of ids, chosen (with the reference alone) so that the
    # reference's greedy top-2 margins stay above 2x the tolerance for most or all of the 8
    # steps: otherwise a near tie would excuse a differing token and the check would be weak.
    def prompt(n, vocab, start, step):
        return [(start + step * i) % vocab for i in range(n)]

    return [
        case("f32_gqa_separate_f32kv",
             "--dtype f32 --dim 256 --layers 3 --heads 8 --kv-heads 2 --ffn 512 --vocab 300",
             prompt(37, 300, 0, 3), tol=TOL_F32),
        case("f32_gqa_separate_f16kv",
             "--dtype f32 --dim 256 --layers 3 --heads 8 --kv-heads 2 --ffn 512 --vocab 300",
             prompt(37, 300, 0, 3), kv="f16", tol=TOL_KV_F16),
        case("f32_mha_tied_one_token_prompt",
             "--dtype f32 --dim 64 --layers 2 --heads 2 --kv-heads 2 --ffn 160 --vocab 300 --tied"
             " --seed 11", [17], tol=TOL_F32),
        case("f16_mha_tied_theta500k",
             "--dtype f16 --dim 128 --layers 2 --heads 4 --kv-heads 4 --ffn 352 --vocab 320 --tied"
             " --rope-theta 500000 --seed 3", prompt(21, 320, 0, 3), tol=TOL_HALF),
        case("bf16_mqa_separate_eps1e-6",
             "--dtype bf16 --dim 192 --layers 2 --heads 4 --kv-heads 1 --ffn 384 --vocab 300"
             " --rms-eps 1e-6 --seed 5", prompt(29, 300, 0, 3), tol=TOL_HALF),
        case("q8_0_gqa_separate",
             "--dtype q8_0 --dim 256 --layers 3 --heads 8 --kv-heads 4 --ffn 512 --vocab 300"
             " --seed 9", prompt(33, 300, 31, 23), q8=True),
        case("q8_0_mha_tied_f16kv",
             "--dtype q8_0 --dim 128 --layers 2 --heads 4 --kv-heads 4 --ffn 256 --vocab 288"
             " --tied --seed 13", prompt(19, 288, 36, 5), kv="f16", q8=True),
        case("qwen2_qkv_bias_gqa_f32",
             "--arch qwen2 --qkv-bias --dtype f32 --dim 128 --layers 2 --heads 4 --kv-heads 2"
             " --ffn 256 --vocab 300 --rope-theta 1000000 --seed 21", prompt(25, 300, 0, 5),
             tol=TOL_F32),
        case("llama31_rope_freqs_theta500k_gqa_f32",
             "--dtype f32 --dim 128 --layers 2 --heads 4 --kv-heads 2 --ffn 256 --vocab 300"
             " --rope-theta 500000 --rope-freqs --seed 23", prompt(29, 300, 0, 7), tol=TOL_F32),
        case("qwen2_qkv_bias_tied_f16",
             "--arch qwen2 --qkv-bias --tied --dtype f16 --dim 128 --layers 2 --heads 4"
             " --kv-heads 2 --ffn 256 --vocab 300 --rope-theta 1000000 --seed 27",
             prompt(25, 300, 1, 11), tol=TOL_HALF),
        case("mistral_sliding_window_8_gqa_f32",
             "--arch mistral --sliding-window 8 --dtype f32 --dim 128 --layers 2 --heads 4"
             " --kv-heads 2 --ffn 256 --vocab 300 --seed 29", prompt(31, 300, 2, 13), tol=TOL_F32),
        case("f16_llama_spm_vocab_32000_f16kv",
             "--dtype f16 --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --seed 17",
             [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203],
             kv="f16", tol=TOL_KV_F16, vocab_from="llama-spm.gguf"),
    ]


def run(cmd, what, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=RUN_TIMEOUT_S, env=env)
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s\n%s" % (what, p.returncode, " ".join(cmd),
                                                             p.stderr.strip()[-2000:]))
    return p.stdout


def read_logits(path, vocab):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) != 4 * vocab:
        raise RuntimeError("%s holds %d bytes, expected %d f32 logits" % (path, len(raw), vocab))
    return list(struct.unpack("<%df" % vocab, raw))


def run_llmq(llmq, model, config, prompt, logits_file, isa):
    """llmq's (summary JSON object, logits file) for one run with the CPU ISA capped at isa."""
    env = dict(os.environ, LLMQ_CPU_ISA=isa)
    out = run([llmq, "run", "--model", model, "--config", config,
               "--prompt-tokens", ",".join(str(t) for t in prompt),
               "--temperature", "0", "--max-tokens", str(MAX_TOKENS), "--json", "--ignore-eos",
               "--logits-out", logits_file], "llmq run (LLMQ_CPU_ISA=%s)" % isa, env)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError("llmq run printed nothing")
    summary = json.loads(lines[-1])
    if summary["prompt_tokens"][-len(prompt):] != prompt:
        raise RuntimeError("llmq's prompt_tokens %s do not end with the prompt given %s" % (
            summary["prompt_tokens"], prompt))
    return summary


def compare(want, got, tol, ref_tokens, margins, llmq_tokens, finish_reason):
    """(max |logit difference|, problems, note) for one llmq run against the reference."""
    err = max(abs(a - b) for a, b in zip(want, got))
    problems = []
    if not err <= tol:  # also catches NaN
        worst = max(range(len(want)), key=lambda i: abs(want[i] - got[i]))
        problems.append("logits differ: max |d| %.3g > tol %.3g (token %d: llmq %.6g, reference "
                        "%.6g)" % (err, tol, worst, got[worst], want[worst]))
    note = ""
    if len(llmq_tokens) != MAX_TOKENS:
        problems.append("llmq generated %d tokens, asked for %d (finish_reason %s)" % (
            len(llmq_tokens), MAX_TOKENS, finish_reason))
    for i, (a, b) in enumerate(zip(llmq_tokens, ref_tokens)):
        if a == b:
            continue
        if margins[i] <= 2 * tol:
            note = "near tie at step %d (reference margin %.3g <= 2*tol): llmq %d, reference " \
                   "%d, later tokens not compared" % (i, margins[i], a, b)
        else:
            problems.append("greedy token %d differs: llmq %d, reference %d (reference top-2 "
                            "margin %.3g > 2*tol %.3g); llmq %s, reference %s" % (
                                i, a, b, margins[i], 2 * tol, llmq_tokens, ref_tokens))
        break
    return err, problems, note


def check_case(c, llmq, maker, tmp, vocab_dir):
    extra = c["maker"].split()
    if c["vocab_from"]:
        vocab_path = os.path.join(vocab_dir or "", c["vocab_from"])
        if not vocab_dir or not os.path.isfile(vocab_path):
            return None, "skipped: %s not found (LLMQ_SHARED_VOCAB_DIR=%s)" % (
                c["vocab_from"], vocab_dir)
        extra += ["--vocab-from", vocab_path]
    model = os.path.join(tmp, c["name"] + ".gguf")
    run([maker, "--out", model] + extra, "llmq-make-model")
    config = os.path.join(tmp, c["name"] + ".toml")
    with open(config, "w") as f:
        f.write('[kv_cache]\ndtype = "%s"\n' % c["kv"])
    logits_file = os.path.join(tmp, c["name"] + ".logits")

    m = ref.LlamaReference(model)
    prompt_tokens = None  # as llmq reports them (BOS included if it adds one)
    errs, problems, notes = [], [], []
    for isa in ISAS:
        summary = run_llmq(llmq, model, config, c["prompt"], logits_file, isa)
        if prompt_tokens is None:
            prompt_tokens = summary["prompt_tokens"]
            want = m.last_logits(prompt_tokens).tolist()
            scale = max(abs(v) for v in want)
            tol = Q8_REL_TOL * scale if c["q8"] else c["tol"]
            ref_tokens, margins = m.greedy(prompt_tokens, MAX_TOKENS)
        elif summary["prompt_tokens"] != prompt_tokens:
            raise RuntimeError("prompt_tokens differ between ISAs: %s vs %s" % (
                summary["prompt_tokens"], prompt_tokens))
        err, p, note = compare(want, read_logits(logits_file, m.vocab), tol, ref_tokens, margins,
                               summary["tokens"], summary.get("finish_reason"))
        errs.append("%s %.3g" % (isa, err))
        problems += ["[%s] %s" % (isa, x) for x in p]
        notes += ["[%s] %s" % (isa, note)] if note else []
    msg = "max |dlogit| %s (tol %.3g, max |logit| %.3g); greedy %s" % (
        ", ".join(errs), tol, scale,
        "identical" if not notes and not problems else "see below")
    for line in notes + problems:
        msg += "\n    " + line
    return not problems, msg


def run_cases(case_list, check, prefix, errors=()):
    """Runs check(case, tmp) for each case in a fresh temporary folder, prints one line per
    case and the totals; 1 when any case failed, else 0. check returns (ok or None for a
    skip, message); an exception of `errors` (or the usual run errors) fails the case."""
    passed = failed = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for c in case_list:
            t0 = time.monotonic()
            try:
                ok, msg = check(c, tmp)
            except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError, KeyError,
                    *errors) as e:
                ok, msg = False, "error: %s" % e
            status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
            print("%s %s (%.1f s): %s" % (status, c["name"], time.monotonic() - t0, msg),
                  flush=True)
            passed += ok is True
            failed += ok is False
    print("total %.1f s" % (time.monotonic() - start))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main(argv):
    if len(argv) != 2:
        print("usage: reference_check.py LLMQ_CLI LLMQ_MAKE_MODEL", file=sys.stderr)
        return 2
    llmq, maker = argv
    vocab_dir = os.environ.get("LLMQ_SHARED_VOCAB_DIR")
    return run_cases(cases(), lambda c, tmp: check_case(c, llmq, maker, tmp, vocab_dir),
                     "llmq-reference-", (ref.GGUFError,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""llmq on Hugging Face safetensors directories against the float64 transformers reference
(hf_reference.py), and against itself on the same weights as GGUF.

Usage: safetensors_reference_check.py LLMQ_CLI LLMQ_MAKE_MODEL

For each case: a random GGUF model from llmq-make-model, converted to a model directory by
gguf_to_safetensors.py (q/k rows un-permuted to Hugging Face's order, rope_freqs as
rope_scaling, norms optionally rounded to BF16/F16, shards, both merges forms). Then
- `llmq run --model DIR` at each CPU ISA: last-position logits within the case's tolerance of
  hf_reference.py's, greedy tokens equal (near ties excused as in reference_check.py);
- where the directory holds exactly the GGUF's weights (norms not rounded): `llmq run --model
  M.gguf` gives the same greedy tokens and logits within 1e-4 of the directory's (the two
  rotate different pair orders of the same numbers, so only f32 summation order differs).
A directory loaded with the wrong rotary order, or with the GGUF's adjacent-pair order kept
for Llama's half-split rows, moves logits by ~1e-1 and fails both.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as hf  # noqa: E402
import reference_check as rc  # noqa: E402

CONVERTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf_to_safetensors.py")
# Same weights, two formats: f32 accumulation order only (see reference_check.py's TOL_F32).
TOL_SAME_WEIGHTS = 1e-4


def case(name, maker, convert, prompt, tol, kv="f32"):
    return {"name": name, "maker": maker, "convert": convert, "prompt": prompt, "tol": tol,
            "kv": kv}


def cases():
    def prompt(n, vocab, start, step):
        return [(start + step * i) % vocab for i in range(n)]

    return [
        case("llama31_rope_scaling_gqa_bf16_3_shards_bf16_norms",
             "--dtype bf16 --dim 128 --layers 2 --heads 4 --kv-heads 2 --ffn 256 --vocab 300"
             " --rope-theta 500000 --rope-freqs --seed 23",
             "--shards 3 --norm-dtype bf16 --merges array", prompt(29, 300, 0, 7), rc.TOL_HALF),
        case("llama31_rope_scaling_gqa_f32_same_weights",
             "--dtype f32 --dim 128 --layers 2 --heads 4 --kv-heads 2 --ffn 256 --vocab 300"
             " --rope-theta 500000 --rope-freqs --seed 31",
             "", prompt(29, 300, 3, 11), rc.TOL_F32),
        case("llama_mha_untied_f16_same_weights",
             "--dtype f16 --dim 128 --layers 2 --heads 4 --kv-heads 4 --ffn 352 --vocab 320"
             " --seed 3", "--shards 2", prompt(21, 320, 0, 3), rc.TOL_HALF),
        case("qwen2_qkv_bias_tied_bf16_bf16_norms",
             "--arch qwen2 --qkv-bias --tied --dtype bf16 --dim 128 --layers 2 --heads 4"
             " --kv-heads 2 --ffn 256 --vocab 300 --rope-theta 1000000 --seed 27",
             "--norm-dtype bf16", prompt(25, 300, 1, 11), rc.TOL_HALF),
        case("qwen2_qkv_bias_gqa_f32_same_weights",
             "--arch qwen2 --qkv-bias --dtype f32 --dim 128 --layers 2 --heads 4 --kv-heads 2"
             " --ffn 256 --vocab 300 --rope-theta 1000000 --seed 21", "--merges array",
             prompt(25, 300, 0, 5), rc.TOL_F32),
        case("mistral_sliding_window_8_f32_same_weights_f16kv",
             "--arch mistral --sliding-window 8 --dtype f32 --dim 128 --layers 2 --heads 4"
             " --kv-heads 2 --ffn 256 --vocab 300 --seed 29", "", prompt(31, 300, 2, 13),
             rc.TOL_KV_F16, kv="f16"),
    ]


def check_case(c, llmq, maker, tmp):
    model = os.path.join(tmp, c["name"] + ".gguf")
    rc.run([maker, "--out", model] + c["maker"].split(), "llmq-make-model")
    model_dir = os.path.join(tmp, c["name"])
    rc.run(["/usr/bin/python3", CONVERTER, model, model_dir] + c["convert"].split(),
           "gguf_to_safetensors.py")
    config = os.path.join(tmp, c["name"] + ".toml")
    with open(config, "w") as f:
        f.write('[kv_cache]\ndtype = "%s"\n' % c["kv"])
    logits_file = os.path.join(tmp, c["name"] + ".logits")
    m = hf.HFReference(model_dir)
    want = ref_tokens = margins = prompt_tokens = None
    errs, problems, notes = [], [], []
    dir_runs = {}
    for isa in rc.ISAS:
        summary = rc.run_llmq(llmq, model_dir, config, c["prompt"], logits_file, isa)
        if prompt_tokens is None:
            prompt_tokens = summary["prompt_tokens"]
            want = m.last_logits(prompt_tokens).tolist()
            ref_tokens, margins = m.greedy(prompt_tokens, rc.MAX_TOKENS)
        got = rc.read_logits(logits_file, m.vocab)
        dir_runs[isa] = (summary["tokens"], got)
        err, p, note = rc.compare(want, got, c["tol"], ref_tokens, margins, summary["tokens"],
                                  summary.get("finish_reason"))
        errs.append("%s %.3g" % (isa, err))
        problems += ["[%s] %s" % (isa, x) for x in p]
        notes += ["[%s] %s" % (isa, note)] if note else []
    same = ""
    if "--norm-dtype" not in c["convert"]:
        worst = 0.0
        for isa in rc.ISAS:
            summary = rc.run_llmq(llmq, model, config, c["prompt"], logits_file, isa)
            tokens, got = dir_runs[isa]
            gguf_logits = rc.read_logits(logits_file, m.vocab)
            d = max(abs(a - b) for a, b in zip(gguf_logits, got))
            worst = max(worst, d)
            if summary["tokens"] != tokens:
                problems.append("[%s] GGUF and safetensors greedy tokens differ: %s vs %s" % (
                    isa, summary["tokens"], tokens))
            if not d <= TOL_SAME_WEIGHTS:
                problems.append("[%s] GGUF and safetensors logits differ by %.3g > %.3g" % (
                    isa, d, TOL_SAME_WEIGHTS))
        same = "; same weights as GGUF: max |dlogit| %.3g, greedy tokens %s" % (
            worst, "equal" if not problems else "see below")
    msg = "vs transformers reference: max |dlogit| %s (tol %.3g); greedy %s%s" % (
        ", ".join(errs), c["tol"], "identical" if not notes and not problems else "see below",
        same)
    for line in notes + problems:
        msg += "\n    " + line
    return not problems, msg


def main(argv):
    if len(argv) != 2:
        print("usage: safetensors_reference_check.py LLMQ_CLI LLMQ_MAKE_MODEL", file=sys.stderr)
        return 2
    llmq, maker = argv
    return rc.run_cases(cases(), lambda c, tmp: check_case(c, llmq, maker, tmp),
                        "llmq-st-reference-", (hf.SafetensorsError,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

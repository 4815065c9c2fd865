"""llmq quantize and mixed K-quant models end to end: an F32 random model quantized to the
Q4_K_M mix (Q4_K, Q6_K and F32 tensors) runs, and its greedy tokens match those of the same
weights dequantized back to F32 (`llmq quantize ... f32`) for the first tokens (random models
have small logit margins, and the Q4_K_M model's decode path rounds activations to int8, so
later tokens may part; the first ones come from margins far above that error). Bad TYPE names
are refused."""
import json
import os
import sys

from llmq_test_helpers import Checks, json_lines, make_model, run, tmpdir

llmq, maker = sys.argv[1], sys.argv[2]
c = Checks()
d = tmpdir()
f32 = make_model(maker, os.path.join(d, "f32.gguf"), dim=256, layers=3, heads=4, kv_heads=2,
                 ffn=512, vocab=300, dtype="f32", seed=5)
q = os.path.join(d, "q4km.gguf")
deq = os.path.join(d, "deq.gguf")
run([llmq, "quantize", f32, q, "q4_k_m"])
run([llmq, "quantize", q, deq, "f32"])

info = json.loads(run([llmq, "inspect", q, "--json"]).stdout)
types = info["types"]
c.check(set(types) == {"F32", "Q4_K", "Q6_K"}, f"q4_k_m holds F32, Q4_K and Q6_K tensors (got {sorted(types)})")
c.check(types["F32"]["tensors"] == 7, f"norms stay F32 (got {types['F32']['tensors']})")
c.check(os.path.getsize(q) < os.path.getsize(f32) / 5, "the q4_k_m file is less than a fifth of the F32 one")


def greedy(model, n):
    p = run([llmq, "run", "--model", model, "--prompt", "Once upon a time", "--max-tokens", str(n),
             "--temperature", "0", "--json"])
    return json_lines(p.stdout)[-1]["tokens"]


a, b = greedy(q, 16), greedy(deq, 16)
c.check(len(a) == 16 and len(b) == 16, "both models generate 16 tokens")
c.check(a[:3] == b[:3], f"first greedy tokens equal: q4_k_m {a[:3]} vs dequantized f32 {b[:3]}")

p = run([llmq, "quantize", f32, os.path.join(d, "x.gguf"), "q4_q"], check=False)
c.check(p.returncode != 0 and "q4_k_m" in p.stderr, "an unknown TYPE is refused with the list of types")
c.done()

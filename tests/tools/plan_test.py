"""llmq plan on header-only files shaped like real models gives the right totals and split."""
import json
import os
import sys

from llmq_test_helpers import Checks, make_model, run, tmpdir

llmq, maker = sys.argv[1], sys.argv[2]
c = Checks()
d = tmpdir()
GiB = 1 << 30

# Llama-3.1-70B-shaped text model, BF16, header only.
m70 = make_model(maker, os.path.join(d, "llama70b.gguf"), dim=8192, layers=80, heads=64,
                 kv_heads=8, ffn=28672, vocab=128256, context=8192, dtype="bf16",
                 header_only=True)
c.check(os.path.getsize(m70) < 64 << 20, f"a 70B header-only file is small ({os.path.getsize(m70)} bytes)")
p = run([llmq, "plan", "--model", m70, "--devices", "4x80GiB", "--json"])
plan = json.loads(p.stdout)
c.check(plan["fits"], "70B on 4x80GiB fits")
c.check(plan["tensor"] == 4 and plan["pipeline"] == 1, f"70B on 4x80GiB plans TP=4 (got {plan['tensor']}x{plan['pipeline']})")
params = plan["parameters"]
c.check(70.0e9 < params < 71.2e9, f"70B has about 70.6 B parameters (got {params / 1e9:.2f} B)")
total = plan["total_weight_bytes"]
c.check(130 * GiB < total < 132.5 * GiB, f"70B weights total about 131 GiB (got {total / GiB:.1f})")
per = [dev["weight_bytes"] for dev in plan["devices"]]
c.check(len(per) == 4, "four devices in the plan")
c.check(all(32 * GiB < w < 34.5 * GiB for w in per), f"about 33 GiB of weights per device (got {[round(w / GiB, 2) for w in per]})")

p = run([llmq, "plan", "--model", m70, "--devices", "1x80GiB", "--json"], check=False)
c.check(p.returncode == 1, f"70B on 1x80GiB exits 1, a runtime result, not a usage error (got {p.returncode})")
plan = json.loads(p.stdout)
c.check(not plan["fits"], "70B on 1x80GiB does not fit")
c.check("131" in plan["reason"] and "GiB" in plan["reason"], f"the refusal gives the bytes needed: {plan['reason']}")

p = run([llmq, "plan", "--model", m70, "--devices", "8x80GiB,8x80GiB", "--tensor", "1", "--json"], check=False)
plan = json.loads(p.stdout)
c.check(not plan["fits"] and "tensor = 2" in plan["reason"],
        f"tensor = 1 is refused and a split that fits is named: {plan.get('reason')}")

# Four pipeline stages of 20 +- 1 layers: the even split fits (the greedy balancer's unsigned
# wrap gave one stage 59 layers and refused).
p = run([llmq, "plan", "--model", m70, "--devices", "4x80GiB", "--pipeline", "4", "--json"], check=False)
plan = json.loads(p.stdout)
c.check(p.returncode == 0 and plan["fits"], f"70B on 4x80GiB with pipeline = 4 fits: {plan.get('reason')}")
spans = [dev["layers"][1] - dev["layers"][0] for dev in plan["devices"]]
c.check(sum(spans) == 80 and all(19 <= n <= 21 for n in spans), f"four even stages (got {spans} layers)")

# A refused plan prints the KV cache its refusal counts, not 0 B.
p = run([llmq, "plan", "--model", m70, "--devices", "1x80GiB"], check=False)
c.check(" kv 0 B" not in p.stdout and "KV blocks 0 " not in p.stdout,
        f"a refused plan shows the KV it needs: {p.stdout.strip()}")

# The text form names every device.
p = run([llmq, "plan", "--model", m70, "--devices", "4x80GiB"])
c.check(p.stdout.count("device:") == 4 and "fits" in p.stdout, "text plan lists four devices")

# TinyLlama shape: 1.1 B parameters.
tiny = make_model(maker, os.path.join(d, "tiny.gguf"), dim=2048, layers=22, heads=32, kv_heads=4,
                  ffn=5632, vocab=32000, dtype="f16", header_only=True)
p = run([llmq, "plan", "--model", tiny, "--devices", "1x24GiB", "--json"])
plan = json.loads(p.stdout)
c.check(1.0e9 < plan["parameters"] < 1.2e9, f"TinyLlama has about 1.1 B parameters (got {plan['parameters']})")
c.check(plan["fits"], "TinyLlama F16 fits 24 GiB")

# A header-only file cannot be served.
p = run([llmq, "run", "--model", tiny, "--prompt", "hi"], check=False)
c.check(p.returncode != 0 and "header" in (p.stderr + p.stdout).lower(), f"run refuses a header-only file: {p.stderr.strip()}")
c.done()

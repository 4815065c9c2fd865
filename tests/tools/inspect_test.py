"""llmq inspect tells a header-only file from one whose tensor data is cut short."""
import json
import os
import sys

from llmq_test_helpers import Checks, make_model, run, tmpdir

llmq, maker = sys.argv[1], sys.argv[2]
c = Checks()
d = tmpdir()

full = make_model(maker, os.path.join(d, "full.gguf"), dim=64, layers=2, heads=4, kv_heads=2, ffn=128)
header = make_model(maker, os.path.join(d, "header.gguf"), dim=64, layers=2, heads=4, kv_heads=2,
                    ffn=128, header_only=True)
p = run([llmq, "inspect", full])
c.check(p.returncode == 0 and "header only" not in p.stdout and "truncated" not in p.stdout,
        f"a whole file is neither header only nor truncated: {p.stdout.splitlines()[0]}")
p = run([llmq, "inspect", header])
c.check(p.returncode == 0 and "(header only)" in p.stdout, f"a header-only file says so: {p.stdout.splitlines()[0]}")

j = json.loads(run([llmq, "inspect", "--json", full]).stdout)
needed = j["data_bytes"]
data = open(full, "rb").read()
start = j["data_offset"]
for present in (needed // 3, needed - 1):
    cut = os.path.join(d, f"cut-{present}.gguf")
    with open(cut, "wb") as out:
        out.write(data[:start + present])
    p = run([llmq, "inspect", cut], check=False)
    want = f"truncated: {present} of {needed} bytes of tensor data present"
    c.check(p.returncode != 0, f"a file cut to {present} data bytes exits non-zero (got {p.returncode})")
    c.check(want in p.stdout and want in p.stderr and "header only" not in p.stdout,
            f"it says '{want}': {p.stdout.splitlines()[0]} / {p.stderr.strip()}")
    p = run([llmq, "inspect", "--json", cut], check=False)
    j = json.loads(p.stdout)
    c.check(p.returncode != 0 and j["truncated"] and j["data_bytes_present"] == present,
            f"--json reports the cut too (rc {p.returncode}, {j.get('data_bytes_present')})")
c.done()

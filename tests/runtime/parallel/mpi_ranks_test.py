"""`mpirun -np 2 llmqd` serves with tensor = 2 and with pipeline = 2 across two processes, and
its greedy and seeded outputs equal `llmq run` in one process. Skips when mpirun is absent."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["LLMQ_SOURCE_ROOT"], "tests", "tools"))
from llmq_test_helpers import Checks, json_lines, make_model, run, tmpdir  # noqa: E402

llmq, maker, llmqd = sys.argv[1], sys.argv[2], sys.argv[3]
mpirun = shutil.which("mpirun")
if not mpirun:
    print("mpirun not found: skipping (install openmpi-bin)")
    sys.exit(77)

c = Checks()
d = tmpdir()
model = make_model(maker, os.path.join(d, "m.gguf"), dim=128, layers=4, heads=4, kv_heads=2,
                   ffn=256, vocab=512, dtype="f16")
prompts = [[1, 5, 9, 200], [1, 300, 301, 302, 303, 304, 305, 306, 307, 17]]
cases = [(p, 0.0, 0) for p in prompts] + [(p, 0.9, 11) for p in prompts]


def expected(prompt, temperature, seed):
    p = run([llmq, "run", "--model", model, "--prompt-tokens", ",".join(map(str, prompt)),
             "--temperature", str(temperature), "--seed", str(seed), "--max-tokens", "10",
             "--ignore-eos", "--json"])
    return json_lines(p.stdout)[-1]["tokens"]


want = [expected(*case) for case in cases]

for name, tp, pp in [("tp2", 2, 1), ("pp2", 1, 2)]:
    ipc = os.path.join(d, "ipc-" + name)
    cfg = os.path.join(d, name + ".toml")
    with open(cfg, "w") as f:
        f.write(f'[model]\npath = "{model}"\n[parallel]\ntensor = {tp}\npipeline = {pp}\n'
                f'[ipc]\ndir = "{ipc}"\n[devices]\ncpu_threads_per_device = 1\n')
    env = dict(os.environ, LLMQ_IPC_DIR=ipc, OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    log = open(os.path.join(d, name + ".log"), "w")
    daemon = subprocess.Popen([mpirun, "-np", "2", "--oversubscribe", "--allow-run-as-root",
                               llmqd, "--config", cfg], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        sock = os.path.join(ipc, "llmq-default.sock")
        for _ in range(300):
            st = subprocess.run([llmq, "status", "--json"], capture_output=True, text=True, env=env)
            if st.returncode == 0:
                break
            time.sleep(0.1)
        c.check(st.returncode == 0, f"{name}: mpirun llmqd answers status")
        status = json.loads(st.stdout)
        c.check(status["plan"]["tensor"] == tp and status["plan"]["pipeline"] == pp,
                f"{name}: plan is tensor {tp} x pipeline {pp}")
        for case, tokens in zip(cases, want):
            prompt, temperature, seed = case
            g = subprocess.run([llmq, "generate", "--prompt-tokens", ",".join(map(str, prompt)),
                                "--temperature", str(temperature), "--seed", str(seed),
                                "--max-tokens", "10", "--ignore-eos", "--json"],
                               capture_output=True, text=True, env=env, timeout=60)
            got = json_lines(g.stdout)[-1]["tokens"] if g.returncode == 0 else None
            c.check(got == tokens, f"{name}: temperature {temperature} prompt {prompt[:3]}...: {got} == {tokens}")
        # SIGTERM to rank 0 drains and stops the followers: mpirun exits 0.
        os.kill(status["pid"], signal.SIGTERM)
        rc = daemon.wait(timeout=30)
        c.check(rc == 0, f"{name}: mpirun exits 0 after SIGTERM to rank 0 (got {rc})")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.close()
c.done()

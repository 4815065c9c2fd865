"""llmq's command line keeps the habits of llama.cpp and Ollama users and one exit-code policy:

- -m/-p/-n/-c/-t/--temp work on `run`; --config has no short flag; --seed -1 is random, a seed
  repeats its output; an unknown command or flag is a usage error (2) that names the closest
  one; a failure at run time is 1; `--help` documents the exit codes and every subcommand's
  `--help` has an example;
- `inspect` shows the model's name, tokenizer, special tokens and chat template;
- against a real llmqd: `list` shows the instance (pid, model, uptime, clients), `generate`
  prints the stats line `run` prints, `status` writes sizes in human units.

    cli_habits_test.py LLMQ LLMQD MAKE_MODEL
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from llmq_test_helpers import Checks, make_model, run, tmpdir

STATS = re.compile(r'\[(\d+) prompt tokens, [\d.]+ tok/s prefill; (\d+) generated, [\d.]+ tok/s decode; (\w+)\]')
TIME_SCALE = float(os.environ.get('LLMQ_TEST_TIME_SCALE', '1'))


def main():
    llmq, llmqd, maker = sys.argv[1:4]
    c = Checks()
    tmp = tmpdir()
    model = make_model(maker, os.path.join(tmp, 'habitfile.gguf'), dim=64, layers=2, heads=4, kv_heads=2, ffn=128,
                       vocab=512, name='habit-model')

    def llmq_run(*args, env=None):
        return run([llmq, *args], check=False, env=env)

    # ---- usage errors and the exit-code policy
    p = llmq_run('genrate', '-p', 'x')
    c.check(p.returncode == 2 and "did you mean 'generate'" in p.stderr, f'unknown command: rc {p.returncode}, {p.stderr.strip()}')
    p = llmq_run('run', '-m', model, '--temprature', '0')
    c.check(p.returncode == 2 and "did you mean '--temperature'" in p.stderr, f'unknown flag: rc {p.returncode}, {p.stderr.strip()}')
    p = llmq_run('run', '-m', model)
    c.check(p.returncode == 2 and 'no prompt' in p.stderr, f'a missing prompt is a usage error: rc {p.returncode}')
    p = llmq_run('run', '-m', model, '-p', 'x', '-c', '0')
    c.check(p.returncode == 2, f'-c 0 is a usage error: rc {p.returncode}, {p.stderr.strip()}')
    p = llmq_run('inspect', os.path.join(tmp, 'missing.gguf'))
    c.check(p.returncode == 1, f'a missing file is a runtime error (1): rc {p.returncode}')
    p = llmq_run('--help')
    c.check(p.returncode == 0 and 'Exit codes: 0' in p.stdout and '2 usage error' in p.stdout,
            'llmq --help documents the exit codes')
    subcommands = re.findall(r'^  (\w+)\s{2,}', p.stdout.split('SUBCOMMANDS')[-1], re.M)
    c.check({'run', 'generate', 'chat', 'list', 'inspect', 'plan', 'quantize'} <= set(subcommands),
            f'--help lists the subcommands: {subcommands}')
    for sub in [s for s in subcommands if s != 'serve']:  # serve passes its flags to llmqd
        h = llmq_run(sub, '--help')
        c.check(h.returncode == 0 and '\nExample:\n  llmq ' in h.stdout, f'llmq {sub} --help has an example')
    h = llmq_run('run', '--help').stdout
    c.check(re.search(r'-c,\s*--ctx-size', h) and re.search(r'-t,\s*--threads', h) and '--temp' in h
            and re.search(r'-n,\s*--max-tokens', h) and re.search(r'-p,\s*--prompt', h) and re.search(r'-m,\s*--model', h),
            'run takes -m, -p, -n, -c, -t, --temp')
    c.check(re.search(r'^\s*--config\b', h, re.M) is not None, '--config has no short flag')

    # ---- run with the short flags; seeds
    def generate_text(seed, temp='1.0'):
        r = llmq_run('run', '-m', model, '-p', 'Once upon a time', '-n', '8', '-c', '128', '-t', '1', '--temp', temp,
                     '--seed', str(seed), '--ignore-eos', '--json')
        c.check(r.returncode == 0, f'run -m -p -n -c -t --temp --seed {seed}: {r.stderr.strip()}')
        return json.loads(r.stdout.strip().splitlines()[-1])['tokens'] if r.returncode == 0 else None
    c.check(generate_text(7) == generate_text(7), 'the same --seed gives the same tokens')
    c.check(generate_text(-1) != generate_text(-1), '--seed -1 picks a random seed each time')
    r = llmq_run('run', '-m', model, '-p', 'Hi', '-n', '3', '--temp', '0', '--ignore-eos')
    m = STATS.search(r.stderr)
    c.check(r.returncode == 0 and m and m.group(2) == '3', f'run prints its stats line: {r.stderr.strip()}')

    # ---- inspect's metadata
    r = llmq_run('inspect', model)
    c.check('name: habit-model' in r.stdout, f'inspect names the model: {r.stdout[:300]}')
    c.check(re.search(r'tokenizer: \w+.*512 tokens', r.stdout), 'inspect names the tokenizer and its size')
    c.check(re.search(r'special tokens:.*bos \d+', r.stdout), 'inspect lists the special tokens')
    c.check('chat template: ' in r.stdout, 'inspect says what the chat template is')
    j = json.loads(llmq_run('inspect', model, '--json').stdout)
    c.check(j['metadata']['name'] == 'habit-model' and 'bos' in j['metadata']['special_tokens'],
            'inspect --json carries the metadata')

    # ---- against a running llmqd
    ipc = os.path.join(tmp, 'ipc')
    os.mkdir(ipc, 0o700)
    env = dict(os.environ, LLMQ_IPC_DIR=ipc)
    log = open(os.path.join(tmp, 'llmqd.log'), 'w')
    # llmqd takes the same short flags (-m, -c, -t); its --config has no short flag either.
    daemon = subprocess.Popen([llmqd, '-m', model, '-c', '256', '-t', '1', '--instance', 'habits'], env=env,
                              stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30 * TIME_SCALE
        while llmq_run('status', '--instance', 'habits', env=env).returncode != 0:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise AssertionError('llmqd did not start')
            time.sleep(0.1)
        r = llmq_run('list', env=env)
        row = next((l for l in r.stdout.splitlines() if l.startswith('habits ')), '')
        c.check(r.returncode == 0 and str(daemon.pid) in row and 'habitfile' in row and re.search(r'\d+ s', row),
                f'llmq list shows the instance, pid, model and uptime: {r.stdout!r}')
        listed = [json.loads(l) for l in llmq_run('list', '--json', env=env).stdout.splitlines() if l.strip()]
        c.check(len(listed) == 1 and listed[0]['pid'] == daemon.pid and listed[0]['clients'] >= 1,
                f'llmq list --json: {listed}')
        r = llmq_run('generate', '--instance', 'habits', '-p', 'Hi', '-n', '3', '--temp', '0', '--ignore-eos', env=env)
        m = STATS.search(r.stderr)
        c.check(r.returncode == 0 and m and m.group(2) == '3' and m.group(3) == 'length',
                f'generate prints the stats line run prints: {r.stderr.strip()}')
        r = llmq_run('status', '--instance', 'habits', env=env)
        c.check(re.search(r'weights [\d.]+ [KMG]iB, kv [\d.]+ [KMG]iB', r.stdout) and ' B,' not in r.stdout,
                f'status writes sizes in human units: {r.stdout}')
        c.check('context 256' in r.stdout, f'llmqd -c 256 sets the context: {r.stdout}')
        text = open(os.path.join(tmp, 'llmqd.log')).read()
        c.check('loading model: planning memory (step 3 of 5)' in text, f'llmqd logs the load\'s steps: {text[:600]}')
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
    r = llmq_run('list', env=env)
    c.check(r.returncode == 0 and 'no llmqd instance is running' in r.stdout, f'llmq list with none: {r.stdout!r}')
    shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == '__main__':
    main()

"""Long work shows its progress on stderr: JSON lines with --json (`llmq quantize` in bytes per
tensor, `llmq run`'s model load and `llmq plan` in steps), a bar redrawn in place on a terminal,
and nothing on a pipe; stdout stays the command's own.

    progress_test.py LLMQ MAKE_MODEL
"""

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time

from llmq_test_helpers import Checks, make_model, run, tmpdir


def progress_lines(stderr):
    lines = []
    for line in stderr.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if isinstance(j, dict) and 'progress' in j:
            lines.append(j)
    return lines


def on_terminal(args):
    """Runs args with stderr on a pseudo-terminal; returns what the terminal showed."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b''
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif p.poll() is not None:
            break
    p.wait()
    os.close(master)
    return p.returncode, seen.decode(errors='replace')


def main():
    llmq, maker = sys.argv[1:3]
    c = Checks()
    tmp = tmpdir()
    small = make_model(maker, os.path.join(tmp, 'small.gguf'), dim=64, layers=2, heads=4, kv_heads=2, ffn=128,
                       vocab=512, dtype='f32')

    p = run([llmq, 'quantize', small, os.path.join(tmp, 'q.gguf'), 'q8_0', '--json'])
    lines = progress_lines(p.stderr)
    c.check(lines and all(l['progress'] == 'quantizing' and l['unit'] == 'bytes' for l in lines),
            f'quantize --json writes progress lines in bytes: {p.stderr[:300]}')
    done = [l['done'] for l in lines]
    c.check(done == sorted(done) and lines[-1]['done'] == lines[-1]['total'] > 0,
            f'quantize progress only grows and ends at its total: {done[-3:]} of {lines[-1]["total"] if lines else None}')
    c.check(len({l['detail'] for l in lines}) > 3, 'quantize progress names the tensors')
    result = json.loads(p.stdout)
    c.check(result['out'].endswith('q.gguf') and result['bytes'] == os.path.getsize(result['out']),
            f'quantize --json prints its result on stdout: {p.stdout}')

    p = run([llmq, 'run', '-m', small, '-p', 'Hi', '-n', '2', '--json'])
    lines = progress_lines(p.stderr)
    c.check([l['done'] for l in lines] == list(range(6)) and lines[-1]['progress'] == 'loading model',
            f'run --json reports the load\'s steps: {[(l["done"], l["detail"]) for l in lines]}')
    c.check(all('progress' not in json.loads(l) for l in p.stdout.splitlines() if l.strip()),
            'stdout holds only the generation')

    p = run([llmq, 'plan', '-m', small, '--json'])
    lines = progress_lines(p.stderr)
    c.check(lines and lines[-1]['progress'] == 'planning' and lines[-1]['done'] == lines[-1]['total'],
            f'plan --json reports its steps: {p.stderr[:300]}')
    json.loads(p.stdout)  # the plan itself, unmixed

    p = run([llmq, 'quantize', small, os.path.join(tmp, 'q2.gguf'), 'q8_0'])
    c.check(p.stderr == '', f'on a pipe, no progress is shown: {p.stderr[:200]!r}')

    # A model big enough to take more than the bar's 0.3 s delay.
    big = make_model(maker, os.path.join(tmp, 'big.gguf'), dim=512, layers=6, heads=8, kv_heads=4, ffn=1536,
                     vocab=512, dtype='f32')
    rc, shown = on_terminal([llmq, 'quantize', big, os.path.join(tmp, 'big-q4.gguf'), 'q4_k_m'])
    c.check(rc == 0, f'quantize on a terminal exits 0 (got {rc})')
    c.check('\r' in shown and 'quantizing [' in shown and '100%' in shown and 'MiB of' in shown,
            f'a terminal shows a bar redrawn in place: {shown[-300:]!r}')
    shutil.rmtree(tmp, ignore_errors=True)
    c.done()


if __name__ == '__main__':
    main()

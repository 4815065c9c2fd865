"""The llmq Python package (python/llmq) against a real llmqd, run with Debian's /usr/bin/python3.

Pins the ctypes structs to the C header's sizes; checks connect errors, status, tokenize (against
the daemon's own tokenizer through `llmq tokenize`), a greedy generation token for token against
`llmq run` in-process, logprobs, cancellation by closing the stream (llmqd frees the request),
the daemon's error text in LlmqError, two interleaved generations on one client, and that
`pip install` of python/ gives an importable package.
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
from integration_harness import Harness, TestFailure, bound, check  # noqa: E402
from python_client_setup import import_llmq  # noqa: E402


def main():
    with Harness('python_client') as h:
        llmq, extra = import_llmq(h)
        from llmq import _abi

        import ctypes
        check((ctypes.sizeof(_abi.ConnectOptions), ctypes.sizeof(_abi.GenerateRequest), ctypes.sizeof(_abi.Event))
              == (40, 128, 80), 'the ctypes structs do not match llmq_client.h')

        try:
            llmq.Client(instance='nobody')
            raise TestFailure('connecting to a missing instance succeeded')
        except llmq.LlmqError as e:
            check(e.code == 'LLMQ_CLIENT_ERR_NOT_FOUND' and 'llmq-nobody.sock' in e.message, f'missing instance: {e}')

        model = h.make_model('pymodel')
        daemon = h.start_daemon(model)
        with llmq.Client() as client:
            st = client.status()
            check(st['model']['name'] == 'pymodel' and st['server'] == 'llmqd', f'status {st["model"]}')
            tokens = client.tokenize('Hello world')
            cli = json.loads(h.llmq('tokenize', '--model', model, '--text', 'Hello world', '--json').stdout)
            cli_tokens = cli['tokens'] if isinstance(cli, dict) else cli
            cli_ids = [t['id'] if isinstance(t, dict) else t for t in cli_tokens]
            check(tokens == cli_ids, f'tokenize {tokens} != llmq tokenize {cli_ids}')

            # Greedy: the same tokens as llmq run in-process.
            ref = h.run_reference(model, {'prompt': 'Once upon a time', 'max_tokens': 12, 'temperature': 0})
            with client.generate('Once upon a time', max_tokens=12, temperature=0, logprobs=True) as g:
                events = list(g)
            check([e.token_id for e in events] == ref['tokens'], f'tokens {[e.token_id for e in events]} != {ref["tokens"]}')
            check(''.join(e.text for e in events) == ref['text'], 'text differs from llmq run')
            check(all(e.logprob is not None and e.logprob <= 0 for e in events), 'logprobs missing or positive')
            check(g.finish_reason == 'length' and g.generated_tokens == 12 and g.prompt_tokens == len(ref['prompt_tokens']),
                  f'final: {g.finish_reason} {g.generated_tokens} {g.prompt_tokens}')
            check(client.generate('Once upon a time', max_tokens=12, temperature=0).text() == ref['text'],
                  'text() differs')

            # Two requests on one client, read interleaved.
            a = client.generate('Hello', max_tokens=5, temperature=0)
            b = client.generate('Once upon a time', max_tokens=12, temperature=0)
            first_b = next(b)
            text_a = a.text()
            text_b = first_b.text + b.text()
            check(text_b == ref['text'] and a.generated_tokens == 5, f'interleaved: {text_b!r} vs {ref["text"]!r}')

            # Cancellation by closing the stream.
            g = client.generate('Once', max_tokens=2000, ignore_eos=True)
            next(g)
            check(client.status()['requests']['running'] == 1, 'the long request is not running')
            started = time.monotonic()
            g.close()
            check(g.finish_reason == 'cancelled', f'closed stream finished {g.finish_reason}')
            deadline = time.monotonic() + bound(2)
            while client.status()['kv_blocks']['used'] != 0:
                check(time.monotonic() < deadline, 'the cancelled request kept its KV blocks')
                time.sleep(0.01)
            h.log(f'cancel by close: freed in {(time.monotonic() - started) * 1000:.0f} ms')

            # The daemon's error text.
            try:
                list(client.generate([10 ** 9], max_tokens=2))
                raise TestFailure('a token id beyond the vocabulary was accepted')
            except llmq.LlmqError as e:
                check(e.code == 'invalid_request' and 'vocabulary' in e.message, f'bad token: {e}')
            try:
                client.generate('x', temperature=-1).text()
                raise TestFailure('temperature -1 was accepted')
            except llmq.LlmqError as e:
                check('temperature' in e.message, f'bad temperature: {e}')
            try:
                client.control('no.such.command')
                raise TestFailure('an unknown command succeeded')
            except llmq.LlmqError as e:
                check('unknown command' in e.message, f'unknown command: {e}')
            check(daemon.alive(), 'llmqd died')

        # pip install of the checkout's python/ folder, then import it from there.
        # From a copy: setuptools writes build/ and *.egg-info beside the sources.
        source = h.path('python-src')
        shutil.copytree(extra.python_dir, source, ignore=shutil.ignore_patterns('build', '*.egg-info', '__pycache__'))
        target = h.path('site')
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation',
                            '--no-index', '--target', target, source],
                           capture_output=True, text=True, timeout=bound(120))
        if r.returncode != 0:
            raise TestFailure(f'pip install python/ failed: {r.stderr[-1500:]}')
        code = ('import llmq, sys; c = llmq.Client(); print(c.status()["model"]["name"]); '
                'print(llmq.__file__)')
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=bound(30),
                           cwd=h.tmp, env=dict(os.environ, PYTHONPATH=target))
        check(r.returncode == 0 and r.stdout.split('\n')[0] == 'pymodel' and r.stdout.split('\n')[1].startswith(target),
              f'the pip-installed package: {r.stdout} {r.stderr}')


if __name__ == '__main__':
    main()

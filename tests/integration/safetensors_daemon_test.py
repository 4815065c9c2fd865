"""llmqd serves a Hugging Face safetensors directory ([model] path = DIR): the same greedy
tokens through a client as `llmq run` gives on the same weights as GGUF, `llmq status` names
the directory, and `llmq inspect` / `llmq plan` read the directory like the GGUF."""

import json
import os
import subprocess

from integration_harness import Harness, check, last_json_line, request_args


def main():
    with Harness('integration_daemon_serves_a_safetensors_directory', timeout=170) as h:
        root = os.environ['LLMQ_SOURCE_ROOT']
        gguf = h.make_model('st', dim=64, layers=2, heads=4, kv_heads=2, ffn=128,
                            extra=('--dtype', 'bf16', '--rope-freqs', '--rope-theta', '500000'))
        model_dir = h.path('Llama-3.1-tiny')
        subprocess.run(['/usr/bin/python3', os.path.join(root, 'tests', 'reference', 'gguf_to_safetensors.py'),
                        gguf, model_dir, '--shards', '2'], check=True, capture_output=True, timeout=120)

        inspect = h.llmq('inspect', model_dir)
        check('safetensors directory' in inspect.stdout and 'architecture: llama' in inspect.stdout,
              f'llmq inspect of the directory: {inspect.stdout}')
        plan_dir = json.loads(h.llmq('plan', '--model', model_dir, '--devices', '1x1GiB', '--json').stdout)
        plan_gguf = json.loads(h.llmq('plan', '--model', gguf, '--devices', '1x1GiB', '--json').stdout)
        check(plan_dir['parameters'] == plan_gguf['parameters'],
              f"plan parameters differ: {plan_dir['parameters']} vs {plan_gguf['parameters']}")

        spec = {'prompt_tokens': [1, 17, 33, 90, 211, 7, 400], 'max_tokens': 12, 'temperature': 0,
                'ignore_eos': True}
        want = h.run_reference(gguf, spec)
        daemon = h.start_daemon(model_dir, {'model': {'path': model_dir}})
        r = h.llmq('generate', '--json', *request_args(spec), timeout=60)
        got = last_json_line(r.stdout)
        check(got['tokens'] == want['tokens'],
              f"llmqd on the directory generated {got['tokens']}, llmq run on the GGUF {want['tokens']}")
        status = h.status()
        check(status['model']['name'] == 'Llama-3.1-tiny',
              f"llmq status names the model {status['model'].get('name')!r}")
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()

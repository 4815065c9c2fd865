"""32 concurrent `llmq generate` clients with mixed prompts, lengths and seeds against one llmqd:
every client's tokens equal `llmq run` (in-process) with the same inputs, greedy and seeded
sampling alike; the daemon batched them (fewer engine steps than tokens) and is clean after."""

import random

from integration_harness import Harness, check, collect, last_json_line

TEXTS = [
    'Hello',
    'Once upon a time, in a land far away,',
    'The quick brown fox jumps over the lazy dog. ' * 6,
    'naïve café — ünïcödé and emoji 🙂 in one prompt',
    'def fibonacci(n):\n    if n < 2:\n        return n\n',
    'Q: What is the capital of France?\nA:',
    ' '.join(f'word{i}' for i in range(120)),
    '1 2 3 4 5 6 7 8 9 10',
]


def request_specs(count, seed=20240611):
    rng = random.Random(seed)
    specs = []
    for i in range(count):
        spec = {'max_tokens': rng.choice([1, 2, 5, 9, 16, 24, 40, 64])}
        if i % 4 == 3:
            spec['prompt_tokens'] = [1] + [rng.randrange(3, 500) for _ in range(rng.choice([1, 7, 33, 150]))]
        else:
            spec['prompt'] = rng.choice(TEXTS)
        if i % 2 == 0:
            spec['temperature'] = 0
        else:
            spec['temperature'] = rng.choice([0.5, 0.9, 1.3])
            spec['seed'] = rng.randrange(1, 2**63)
            spec['top_k'] = rng.choice([0, 5, 40])
            spec['top_p'] = rng.choice([0.8, 0.95, 1.0])
            spec['min_p'] = rng.choice([0.0, 0.05])
        if i % 5 == 0:
            spec['repeat_penalty'] = 1.2
        if i % 3 == 0:
            spec['ignore_eos'] = True
        specs.append(spec)
    return specs


def main():
    with Harness('integration_32_clients_match_llmq_run', timeout=170) as h:
        model = h.make_model('small', dim=64, layers=2, heads=4, kv_heads=2, ffn=128)
        specs = request_specs(32)
        expected = [h.run_reference(model, s) for s in specs]
        h.log(f'{len(specs)} references from llmq run')

        daemon = h.start_daemon(model)
        before = h.status()
        clients = [h.start_generate(s) for s in specs]
        results = [collect(c, timeout=120) for c in clients]
        h.log('32 clients done')

        mismatches = []
        for i, ((rc, out, err), spec, want) in enumerate(zip(results, specs, expected)):
            check(rc == 0, f'client {i} exited {rc}: {err.strip()}')
            got = last_json_line(out)
            for key in ('tokens', 'prompt_tokens', 'finish_reason', 'text'):
                if got.get(key) != want.get(key):
                    mismatches.append(f'client {i} {spec}: {key} {got.get(key)!r} != llmq run {want.get(key)!r}')
        check(not mismatches, lambda: '\n'.join(mismatches))

        after = h.status()
        steps = after['steps'] - before['steps']
        tokens = after['tokens_generated'] - before['tokens_generated']
        check(tokens == sum(len(e['tokens']) for e in expected),
              f'the daemon counted {tokens} generated tokens, the clients got {sum(len(e["tokens"]) for e in expected)}')
        check(steps < tokens, f'{steps} engine steps for {tokens} tokens: the clients were not batched')
        h.log(f'{tokens} tokens in {steps} engine steps')
        h.wait_clean(daemon, timeout=1.0)
        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()

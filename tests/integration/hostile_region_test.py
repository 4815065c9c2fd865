"""A hostile client scribbles over its own region while llmqd serves others: random bytes over the
whole region, the request slots, the arena, a payload and the response ring's tail index, and a
second thread rewriting descriptor fields and payload bytes while the daemon reads them. Each
time THAT client gets error events or its connection closed; the daemon never crashes, the
clients running beside it get exactly the tokens they get without the hostile one, and nothing
of the hostile client stays behind (descriptors, region mappings, KV blocks)."""

from integration_harness import Harness, check, collect, last_json_line

WITNESSES = [
    {'prompt': 'A calm bystander', 'max_tokens': 24, 'temperature': 0},
    {'prompt': 'Another bystander', 'max_tokens': 24, 'temperature': 0.9, 'seed': 11, 'top_k': 20},
]

ROUNDS = [('region', s) for s in (1, 2, 3)] + [('requests', s) for s in (4, 5, 6)] + \
         [('arena', s) for s in (7, 8)] + [('payload', s) for s in (9, 10, 11, 12)] + \
         [('response-tail', s) for s in (13, 14)]


def main():
    with Harness('fault_region_garbage_and_rewrites_never_crash_daemon', timeout=170) as h:
        model = h.make_model('small')
        expected = [h.run_reference(model, w)['tokens'] for w in WITNESSES]
        daemon = h.start_daemon(model, {'ipc': {'stall_timeout': '1s', 'response_ring_slots': 64}})
        baseline = h.daemon_baseline(daemon)

        def with_witnesses(action):
            witnesses = [h.start_generate(w) for w in WITNESSES]
            result = action()
            for i, p in enumerate(witnesses):
                rc, out, err = collect(p, timeout=60)
                check(rc == 0, f'witness {i} exited {rc}: {err.strip()}')
                check(last_json_line(out)['tokens'] == expected[i], f'witness {i} got other tokens beside the hostile client')
            check(daemon.alive(), f'llmqd died (exit {daemon.process.returncode})')
            return result

        for what, seed in ROUNDS:
            r = with_witnesses(lambda: h.run_fault_client('garbage', '--what', what, '--seed', str(seed), timeout=30))
            answered = r['closed'] or r['errors'] > 0
            if what in ('region', 'response-tail'):
                # Impossible ring indices: the connection goes, promptly.
                answered = r['closed']
            elif what == 'payload':
                answered = answered or r['finals'] > 0  # the bytes may have landed where any value is valid
            check(answered, f'garbage over {what} (seed {seed}): neither an error event nor a closed connection: {r}')
            h.log(f'garbage over {what} (seed {seed}): closed={r["closed"]} errors={r["errors"]} finals={r["finals"]} '
                  f'tokens={r["tokens"]} {r["messages"][:1]}')
            h.wait_clean(daemon, timeout=1.0, baseline=baseline)

        for seed in (21, 22):
            r = with_witnesses(lambda: h.run_fault_client('rewrite', '--ms', '1500', '--seed', str(seed), timeout=30))
            check(r['published'] > 0, f'the rewrite client published nothing: {r}')
            # Whether a rewrite lands between the client's publish and the daemon's one copy is
            # timing: a copy taken before it is a consistent request and is served. So either a
            # rewrite was seen (an error event naming the field, or a close), or none was and
            # every published request was served to its end. The daemon living and the
            # witnesses' tokens are checked above either way.
            check(r['closed'] or r['errors'] > 0 or r['finals'] == r['published'],
                  f'rewrites gave no error event, no close, and not every request finished: {r}')
            h.log(f'rewrites (seed {seed}): {r["published"]} published, {r["errors"]} errors, {r["finals"]} finals, '
                  f'closed={r["closed"]}; e.g. {r["messages"][:2]}')
            h.wait_clean(daemon, timeout=1.0, baseline=baseline)

        check(daemon.stop() == 0, 'llmqd did not exit 0 on SIGTERM')


if __name__ == '__main__':
    main()
